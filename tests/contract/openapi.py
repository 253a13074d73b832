"""Validate HTTP requests and responses against the real Jellyfin / Emby OpenAPI specs (trimmed copies in
tests/data/openapi, see its README). Specs load once per process.

Spec quirks handled here, each on purpose and nowhere else:
- Jellyfin writes GUIDs as 32 hex digits without dashes while its spec says `format: uuid`, and Emby's spec
  says `format: guid`: both formats accept dashed and dashless GUIDs (and nothing else).
- Emby's spec declares only `api_key` (query) and bearer auth, not the `X-Emby-Token` header the client
  sends, so `security` is stripped from the Emby spec; the test checks that header itself.
- Emby's SDK spec documents every void operation as `200` with no body; the server answers `204`. A body-less
  204 is validated against the operation's body-less 200 when the spec has no 204.
On top of openapi-core, every query parameter must be declared by the operation (openapi-core ignores unknown
ones, and so do the servers: a misspelled or unsupported parameter is silently a no-op there).
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.datastructures import MultiDict

SPEC_DIR = Path(__file__).resolve().parents[1] / "data" / "openapi"
_GUID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class SpecInfo:
    key: str
    file: str
    mode: str  # the SampleServer / client flavour
    version: str  # what the sample server reports in /System/Info


SPECS = {
    "jellyfin-10.10": SpecInfo("jellyfin-10.10", "jellyfin-openapi-10.10.7.json.gz", "jellyfin", "10.10.7"),
    "jellyfin-10.11": SpecInfo("jellyfin-10.11", "jellyfin-openapi-10.11.11.json.gz", "jellyfin", "10.11.11"),
    "jellyfin-12.0": SpecInfo("jellyfin-12.0", "jellyfin-openapi-12.0.0.json.gz", "jellyfin", "12.0.0"),
    "emby-4.8": SpecInfo("emby-4.8", "emby-openapi_v3-4.8.11.json.gz", "emby", "4.8.11.0"),
    "emby-4.9": SpecInfo("emby-4.9", "emby-openapi_v3-4.9.0.41.json.gz", "emby", "4.9.0.41"),
}


def _is_guid(value: Any) -> bool:
    return not isinstance(value, str) or _GUID.fullmatch(value) is not None


class ContractError(AssertionError):
    pass


class Contract:
    """One spec, ready to validate requests/responses given as plain data."""

    def __init__(self, info: SpecInfo, document: dict) -> None:
        self.info = info
        if info.mode == "emby":
            document = _without_security(document)
        self.document = document
        self.server_url = document["servers"][0]["url"].rstrip("/")
        self.host_url = re.match(r"https?://[^/]+", self.server_url).group(0)
        self.api = OpenAPI.from_dict(document, config=Config(
            extra_format_validators={"uuid": _is_guid, "guid": _is_guid},
            spec_validator_cls=None,  # the trimmed copies were validated when they were made
        ))
        self._finder = APICallPathFinder(self.api.spec)

    def operation(self, method: str, raw_path: str) -> tuple[str, dict]:
        """(path template, operation dict) for a request path as sent (with /emby on Emby)."""
        found = self._finder.find(method.lower(), self.host_url + raw_path)
        template = found.path.parts[-1]
        return template, self.document["paths"][template][method.lower()]

    def declared_query(self, template: str, operation: dict) -> dict[str, dict]:
        """{name: parameter object} of the operation's query parameters."""
        params = [*self.document["paths"][template].get("parameters", []), *operation.get("parameters", [])]
        return {p["name"]: p for p in (self._deref(p) for p in params) if p.get("in") == "query"}

    def _deref(self, node: dict) -> dict:
        while "$ref" in node:
            node = functools.reduce(lambda n, part: n[part], node["$ref"][2:].split("/"), self.document)
        return node

    def validate_request(self, method: str, raw_path: str, query: list[tuple[str, str]], body: Any,
                         headers: dict[str, str] | None = None) -> str:
        """Raise ContractError unless the request is valid; returns the matched "METHOD /template"."""
        try:
            template, operation = self.operation(method, raw_path)
        except Exception as exc:  # any lookup failure means "not in this spec"
            raise ContractError(f"{self.info.key}: {method} {raw_path} is not in the spec ({exc})") from None
        params = self.declared_query(template, operation)
        declared = {name.lower(): name for name in params}
        unknown = sorted({k for k, _ in query if k.lower() not in declared})
        if unknown:
            raise ContractError(f"{self.info.key}: {method} {template} sends undeclared query parameter(s) {unknown}")
        counts = Counter(declared[k.lower()] for k, _ in query)
        repeated = sorted(k for k, n in counts.items()
                          if n > 1 and self._deref(params[k].get("schema", {})).get("type") != "array")
        if repeated:  # openapi-core would read the first value only; the servers may take either or fail
            raise ContractError(f"{self.info.key}: {method} {template} repeats scalar query parameter(s) {repeated}")
        # The servers bind parameters case-insensitively; openapi-core does not, so spell them as declared.
        pairs = [(declared[k.lower()], v) for k, v in query]
        data = json.dumps(body).encode() if body is not None else None
        request = MockRequest(self.host_url, method, raw_path, args=MultiDict(pairs), headers=headers or {},
                              data=data, content_type="application/json")
        try:
            self.api.validate_request(request)
        except Exception as exc:  # re-raised with the cause spelled out
            raise ContractError(f"{self.info.key}: request {method} {raw_path}?{_qs(query)} is invalid: "
                                f"{_explain(exc)}") from None
        return f"{method.upper()} {template}"

    def validate_response(self, method: str, raw_path: str, query: list[tuple[str, str]], status: int,
                          payload: Any, headers: dict[str, str] | None = None) -> None:
        """Raise ContractError unless `payload` (JSON-able, bytes or None) is a valid answer with `status`."""
        template, operation = self.operation(method, raw_path)
        responses = operation.get("responses", {})
        if status == 204 and "204" not in responses and payload is None \
                and "content" not in responses.get("200", {"content": None}):
            status = 200  # Emby SDK spec: void operations documented as 200 without a body
        if isinstance(payload, bytes):
            data, content_type = payload, "image/png"
        elif payload is None:
            data, content_type = b"", "application/json"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        request = MockRequest(self.host_url, method, raw_path, args=MultiDict(query), headers=headers or {})
        response = MockResponse(data, status_code=status, content_type=content_type)
        try:
            self.api.validate_response(request, response)
        except Exception as exc:  # re-raised with the cause spelled out
            raise ContractError(f"{self.info.key}: response {status} to {method} {template} is invalid: "
                                f"{_explain(exc)}") from None


def _without_security(document: dict) -> dict:
    document = {**document, "paths": {
        path: {m: ({k: v for k, v in op.items() if k != "security"} if isinstance(op, dict) else op)
               for m, op in item.items()}
        for path, item in document["paths"].items()}}
    document.pop("security", None)
    return document


def _qs(query: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in query)[:300]


def _explain(exc: BaseException) -> str:
    """openapi-core nests the useful jsonschema messages in __cause__ / schema_errors."""
    parts = [f"{type(exc).__name__}: {exc}"]
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for error in getattr(current, "schema_errors", None) or []:
            where = "/".join(str(p) for p in error.absolute_path)
            parts.append(f"  at {where or '<root>'}: {error.message[:300]}")
        for nested in (getattr(current, "__cause__", None), getattr(current, "__context__", None)):
            if nested is not None:
                stack.append(nested)
        for nested in getattr(current, "errors", None) or []:
            if isinstance(nested, BaseException):
                stack.append(nested)
    return "\n".join(parts)


@functools.cache
def contract(key: str) -> Contract:
    info = SPECS[key]
    with gzip.open(SPEC_DIR / info.file, "rt", encoding="utf-8") as fh:
        return Contract(info, json.load(fh))
