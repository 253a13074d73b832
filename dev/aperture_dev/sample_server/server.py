"""A Jellyfin-compatible (or, with mode="emby", Emby-compatible) HTTP server over a `LibraryState`.

It speaks the subset of the real APIs aperture uses, shaped as the OpenAPI specs say (tests validate
that), enforces auth, pages, honours `fields`, and can add latency or fail on demand so tests and
benchmarks exercise retries and partial reads over real HTTP on 127.0.0.1.

Flavours: `SampleServer(data, mode="jellyfin" | "emby", version=...)` imitates Jellyfin 10.10, 10.11 (the
default) or 12 and Emby 4.8 (the default) or 4.9; what differs between them is listed in DATA_SCHEMA.md
("Flavours").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aperture_dev.sample_server.model import (
    EMBY_ASKED_SERIES_FIELDS,
    JELLYFIN12_LIBRARY_NAME,
    PARENTAL_RATINGS,
    SERVER_ID,
    Item,
    LibraryState,
    build_state,
    resolve_flavour,
    user_dto,
    version_tuple,
)

# A few bytes for every stream (`GET /Videos/{id}/stream`, what the .strm files of picks libraries play).
STREAM = b"\x00\x00\x00\x18ftypmp42sample-stream"
# One 1x1 PNG for every poster.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
_TOKEN = re.compile(r'Token="([^"]*)"')
_AUTH_PARTS = ("Client=", "Device=", "DeviceId=", "Version=")


class HTTPError(Exception):
    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class FaultPlan:
    """Seeded random and scripted faults for robustness tests (`SampleServer(faults=...)` or `server.faults = ...`).

    Rates apply to every media API request; the `*_paths` lists are path prefixes (without /emby).
    A hung request sleeps `hang_seconds` and is then still handled, like a real server that finishes work
    its client already gave up on. Short pages drop their last item but keep TotalRecordCount; duplicate
    pages repeat the previous page's last item in place of their own first (an unstable sort order).
    """

    error_rate: float = 0.0
    error_status: int = 503
    timeout_rate: float = 0.0
    hang_seconds: float = 2.0
    malformed_json_paths: tuple[str, ...] = ()
    short_page_paths: tuple[str, ...] = ()
    duplicate_page_paths: tuple[str, ...] = ()
    rate_paths: tuple[str, ...] = ()  # if set, the random rates apply only to these path prefixes
    seed: int = 0
    injected: dict = field(default_factory=dict)  # fault kind -> times applied

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def roll(self, kind: str, rate: float, path: str = "") -> bool:
        if self.rate_paths and not _under(path, self.rate_paths):
            return False
        with self._lock:
            hit = rate > 0 and self._random.random() < rate
            if hit:
                self.injected[kind] = self.injected.get(kind, 0) + 1
            return hit

    def matches(self, kind: str, path: str, prefixes: tuple[str, ...]) -> bool:
        hit = _under(path, prefixes)
        if hit:
            with self._lock:
                self.injected[kind] = self.injected.get(kind, 0) + 1
        return hit


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path.lower().startswith(prefix.lower()) for prefix in prefixes)


@dataclass
class Recorded:
    """One request as the server saw it (for contract tests)."""

    method: str
    path: str  # without the /emby prefix
    raw_path: str
    query: list[tuple[str, str]]
    body: Any
    status: int
    response: Any


class Query:
    """Case-insensitive query parameters; arrays as repeated keys or comma lists (both servers accept both)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key.lower(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name.lower())
        return values[-1] if values else default

    def list(self, name: str) -> list[str]:
        return [part for value in self._values.get(name.lower(), []) for part in value.split(",") if part]

    def bool(self, name: str) -> bool | None:
        value = self.get(name)
        return None if value is None else value.lower() == "true"

    def int(self, name: str, default: int) -> int:
        value = self.get(name)
        try:
            return int(value) if value is not None else default
        except ValueError:
            raise HTTPError(400, f"{name} must be an integer") from None


class SampleServer:
    """Serve `data` (see DATA_SCHEMA.md) on 127.0.0.1; `start()` returns self, `url` is the base URL.

    `mode` is "jellyfin" or "emby"; `version` picks the flavour within it ("10.10.7", "10.11.11", "12.0.0";
    "4.8.11.0", "4.9.0.41", or a shorthand such as "12" or "4.9"; default 10.11.11 / 4.8.11.0)."""

    def __init__(self, data: dict, mode: str = "jellyfin", api_key: str = "sample-key", *, record: bool = False,
                 latency_ms: float = 0.0, version: str | None = None, faults: FaultPlan | None = None) -> None:
        self.mode, self.version = resolve_flavour(mode, version)
        self.api_key = api_key
        self.state: LibraryState = build_state(data, self.mode, self.version)
        self.record = record
        self.latency = latency_ms / 1000.0
        self.prefix = "/emby" if mode == "emby" else ""
        self.requests: list[Recorded] = []
        self.request_count = 0
        self.request_times: list[float] = []  # wall-clock time of each media API request (GET /_sample/requests)
        self._faults: list[list] = []  # [path prefix, status, remaining]
        self.faults = faults
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.routes = _routes(self)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> SampleServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "DELETE", "HEAD"])])
        config = uvicorn.Config(app, log_level="error", access_log=False, lifespan="off", timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("sample server did not start")
            time.sleep(0.01)
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self) -> SampleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls ---------------------------------------------------------------------------
    def fail_next(self, path: str, status: int = 500, times: int = 1, payload: Any = "injected failure") -> None:
        """The next `times` requests whose path (without /emby) starts with `path` answer `status` with `payload`
        (a quiet fault: `fail_next("/Users", 200, payload=[])` is a server that lists nobody)."""
        with self._lock:
            self._faults.append([path, status, times, payload])

    def reset_counters(self) -> None:
        with self._lock:
            self.request_count = 0
            self.request_times.clear()
            self.requests.clear()

    def _fault_for(self, path: str) -> tuple[int, Any] | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault[0]) and fault[2] > 0:
                    fault[2] -= 1
                    return fault[1], fault[3]
        return None

    def _faulty_page(self, matched: list, page: list, start: int) -> list:
        """Apply the fault plan's short-page and duplicate-id faults to one /Items page."""
        plan, path = self.faults, "/Items"
        if plan and page and plan.matches("short_page", path, plan.short_page_paths):
            page = page[:-1]
        if plan and start > 0 and page and plan.matches("duplicate_page", path, plan.duplicate_page_paths):
            page = [matched[start - 1], *page[1:]]
        return page

    # -- HTTP ------------------------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        raw_path = "/" + request.path_params["path"]
        if raw_path.startswith("/_sample/"):  # test controls for an out-of-process server; not a media API
            return self._control(request.method, raw_path)
        path = raw_path
        if self.prefix:
            if not raw_path.lower().startswith(self.prefix + "/"):
                return Response(status_code=404)
            path = raw_path[len(self.prefix):]
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        raw_body = await request.body()
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = raw_body.decode(errors="replace")
        plan = self.faults
        if plan and plan.roll("hang", plan.timeout_rate, path):
            await asyncio.sleep(plan.hang_seconds)
        if plan and plan.roll("error", plan.error_rate, path):
            status, payload = plan.error_status, "injected random failure"
        else:
            status, payload = self._handle(request.method, path, Query(pairs), request.headers, body)
        if plan and status == 200 and plan.matches("malformed_json", path, plan.malformed_json_paths):
            return Response(json.dumps(payload)[:40], status_code=200, media_type="application/json")
        with self._lock:
            self.request_count += 1
            self.request_times.append(time.time())
            if self.record:
                self.requests.append(Recorded(request.method, path, raw_path, pairs, body, status, payload))
        if isinstance(payload, bytes):
            media_type = "video/mp4" if payload is STREAM else "image/png"
            return Response(payload, status_code=status, media_type=media_type)
        if payload is None:
            return Response(status_code=status)
        if isinstance(payload, str):
            return Response(payload, status_code=status, media_type="text/plain")
        return Response(json.dumps(payload), status_code=status, media_type="application/json")

    def _control(self, method: str, path: str) -> Response:
        if path == "/_sample/stats" and method == "GET":
            return Response(json.dumps({"requests": self.request_count}), media_type="application/json")
        if path == "/_sample/requests" and method == "GET":  # benchmarks count requests per stage by time
            return Response(json.dumps({"times": self.request_times}), media_type="application/json")
        if path == "/_sample/reset" and method == "POST":
            self.reset_counters()
            return Response(status_code=204)
        return Response(status_code=404)

    def _handle(self, method: str, path: str, query: Query, headers: Any, body: Any) -> tuple[int, Any]:
        fault = self._fault_for(path)
        if fault:
            return fault
        for verb, pattern, needs_auth, handler in self.routes:
            match = pattern.fullmatch(path)
            if match and verb == method:
                if needs_auth and not self._authorised(headers, query):
                    return 401, "Unauthorized"
                try:
                    with self.state.lock:
                        return handler(query, body, **match.groupdict())
                except HTTPError as exc:
                    return exc.status, exc.message
        return 404, "Not Found"

    def _authorised(self, headers: Any, query: Query) -> bool:
        """The key from the first credential the flavour reads, in Jellyfin's order: the `Authorization:
        MediaBrowser ... Token=` header (Jellyfin wants Client, Device, DeviceId and Version in it too), then
        `X-Emby-Token` / `X-MediaBrowser-Token`, then the `ApiKey` and `api_key` query parameters. Jellyfin 12
        reads only the Authorization header and `ApiKey` (legacy authorization is off by default), so a key sent
        any other way is a 401, as if it had been revoked."""
        legacy = self.state.legacy_auth
        auth = headers.get("authorization") or (headers.get("x-emby-authorization") if legacy else None) or ""
        token = None
        if auth.startswith("MediaBrowser"):
            found = _TOKEN.search(auth)
            complete = all(part in auth for part in _AUTH_PARTS)
            token = found.group(1) if found and (complete or self.mode == "emby") else None
        if not token and legacy:
            token = headers.get("x-emby-token") or headers.get("x-mediabrowser-token")
        if not token:
            token = query.get("ApiKey") or (query.get("api_key") if legacy else None)
        return token == self.api_key


def _routes(server: SampleServer) -> list[tuple[str, re.Pattern, bool, Callable]]:
    """(method, path pattern, needs auth, handler) for this server flavour."""
    api = ServerApi(server)
    jellyfin = [
        ("GET", r"/Users", api.users_list),
        ("POST", r"/UserPlayedItems/(?P<item_id>[^/]+)", api.mark_played_jellyfin),
        ("DELETE", r"/UserPlayedItems/(?P<item_id>[^/]+)", api.unmark_played_jellyfin),
        ("GET", r"/UserItems/Resume", api.resume_jellyfin),
        ("GET", r"/Library/VirtualFolders", api.folders_list),
        ("POST", r"/Library/VirtualFolders", api.create_folder_jellyfin),
        ("DELETE", r"/Library/VirtualFolders", api.delete_folder),
    ]
    emby = [
        ("GET", r"/Users/Query", api.users_query),
        ("GET", r"/Library/VirtualFolders/Query", api.folders_query),
        ("POST", r"/Library/VirtualFolders", api.create_folder_emby),
        ("POST", r"/Library/VirtualFolders/Delete", api.delete_folder),
        ("DELETE", r"/Users/(?P<user_id>[^/]+)/PlayedItems/(?P<item_id>[^/]+)", api.unmark_played_user_path),
    ]
    common = [
        ("GET", r"/System/Info", api.system_info),
        ("GET", r"/System/Info/Public", api.system_info_public),
        ("GET", r"/Localization/ParentalRatings", api.parental_ratings),
        ("GET", r"/Items", api.items),
        ("GET", r"/Users/(?P<user_id>[^/]+)/Items/Resume", api.resume_user_path),
        ("GET", r"/Users/(?P<user_id>[^/]+)", api.get_user),
        ("POST", r"/Users/(?P<user_id>[^/]+)/Policy", api.set_policy),
        ("POST", r"/Users/(?P<user_id>[^/]+)/PlayedItems/(?P<item_id>[^/]+)", api.mark_played_user_path),
        ("POST", r"/Items/(?P<item_id>[^/]+)/Refresh", api.refresh_item),
        ("POST", r"/Library/Refresh", api.refresh_all),
        ("GET", r"/Items/(?P<item_id>[^/]+)/Images/(?P<kind>[^/]+)", api.image),
        ("GET", r"/Videos/(?P<item_id>[^/]+)/stream", api.stream),
        ("HEAD", r"/Videos/(?P<item_id>[^/]+)/stream", api.stream),
    ]
    if server.state.has_user_items_path:  # Emby's user read; Jellyfin's legacy one, gone from 10.11 on
        common.append(("GET", r"/Users/(?P<user_id>[^/]+)/Items", api.user_items))
    specific = emby if server.mode == "emby" else jellyfin
    table = []
    for verb, pattern, handler in [*specific, *common]:
        needs_auth = "/Images/" not in pattern and not pattern.endswith("Public")
        table.append((verb, re.compile(pattern, re.IGNORECASE), needs_auth, handler))
    return table


class ServerApi:
    """Request handlers; each returns (status, JSON-able payload | bytes | None)."""

    def __init__(self, server: SampleServer) -> None:
        self.server = server
        self.state = server.state

    @property
    def emby(self) -> bool:
        return self.server.mode == "emby"

    # -- system and users -----------------------------------------------------------------------
    def system_info_public(self, query: Query, body: Any) -> tuple[int, Any]:
        return 200, {"LocalAddress": self.server.url, "ServerName": "aperture-sample", "Version": self.server.version,
                     "ProductName": "Emby Server" if self.emby else "Jellyfin Server", "Id": SERVER_ID,
                     "StartupWizardCompleted": True, "OperatingSystem": "Linux"}

    def system_info(self, query: Query, body: Any) -> tuple[int, Any]:
        status, info = self.system_info_public(query, body)
        return status, {**info, "HasPendingRestart": False, "IsShuttingDown": False, "SupportsLibraryMonitor": True}

    def parental_ratings(self, query: Query, body: Any) -> tuple[int, Any]:
        """The rating scale. Jellyfin 10.11+ adds RatingScore {score, subScore} (subScore null, so omitted)."""
        scored = not self.emby and version_tuple(self.server.version) >= (10, 11)
        return 200, [{"Name": name, "Value": value, **({"RatingScore": {"score": value}} if scored else {})}
                     for name, value in PARENTAL_RATINGS]

    def users_list(self, query: Query, body: Any) -> tuple[int, Any]:
        return 200, self.state.users_json()

    def users_query(self, query: Query, body: Any) -> tuple[int, Any]:
        users = self.state.users_json()
        return 200, {"Items": users, "TotalRecordCount": len(users)}

    def _user(self, user_id: str):
        user = self.state.users.get(user_id.replace("-", "").lower())
        if user is None:
            raise HTTPError(404, "User not found")
        return user

    def get_user(self, query: Query, body: Any, user_id: str) -> tuple[int, Any]:
        return 200, user_dto(self._user(user_id), self.server.mode)

    def set_policy(self, query: Query, body: Any, user_id: str) -> tuple[int, Any]:
        user = self._user(user_id)
        if not isinstance(body, dict):
            raise HTTPError(400, "policy body required")
        if not self.emby and not {"AuthenticationProviderId", "PasswordResetProviderId"} <= body.keys():
            raise HTTPError(400, "AuthenticationProviderId and PasswordResetProviderId are required")
        policy = dict(body)  # the real servers replace the whole policy: missing fields reset
        if not self.state.has_blocked_folders:
            policy.pop("BlockedMediaFolders", None)  # Emby 4.9's UserPolicy has no such field: it is dropped
        user.policy = policy
        self.state.bump(items=False)
        return 204, None

    # -- libraries -------------------------------------------------------------------------------
    def _folders(self) -> list[dict]:
        return [{k: v for k, v in f.items() if not k.startswith("_")} for f in self.state.folders]

    def folders_list(self, query: Query, body: Any) -> tuple[int, Any]:
        return 200, self._folders()

    def folders_query(self, query: Query, body: Any) -> tuple[int, Any]:
        folders = self._folders()
        return 200, {"Items": folders, "TotalRecordCount": len(folders)}

    def create_folder_jellyfin(self, query: Query, body: Any) -> tuple[int, Any]:
        refresh = query.bool("refreshLibrary")
        name = query.get("name") or ""
        if name and self.state.strict_library_names and not JELLYFIN12_LIBRARY_NAME.fullmatch(name):
            raise HTTPError(400, "The name must not start or end with whitespace.")
        return self._create_folder(name, query.get("collectionType"), query.list("paths"), bool(refresh))

    def create_folder_emby(self, query: Query, body: Any) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        return self._create_folder(str(body.get("Name") or ""), body.get("CollectionType"),
                                   list(body.get("Paths") or []), bool(body.get("RefreshLibrary")))

    def _create_folder(self, name: str, collection_type: str | None, paths: list[str], refresh: bool):
        if not name:
            raise HTTPError(400, "name is required")
        try:
            self.state.create_folder(name, collection_type, paths)
        except ValueError as exc:
            raise HTTPError(400, str(exc)) from None
        if refresh:
            self.state.scan_all()
        return 204, None

    def delete_folder(self, query: Query, body: Any) -> tuple[int, Any]:
        given = body if isinstance(body, dict) else {}
        name = query.get("name") or given.get("Name") or given.get("Id") or query.get("Id")
        if not self.state.delete_folder(str(name or "")):
            raise HTTPError(404, "library not found")
        return 204, None

    def refresh_item(self, query: Query, body: Any, item_id: str) -> tuple[int, Any]:
        if not self.state.refresh(item_id):
            raise HTTPError(404, "item not found")
        return 204, None

    def refresh_all(self, query: Query, body: Any) -> tuple[int, Any]:
        self.state.scan_all()
        return 204, None

    # -- items -----------------------------------------------------------------------------------
    def items(self, query: Query, body: Any) -> tuple[int, Any]:
        return 200, self._query_items(query, query.get("userId"))

    def user_items(self, query: Query, body: Any, user_id: str) -> tuple[int, Any]:
        return 200, self._query_items(query, user_id)

    def _query_items(self, query: Query, user_id: str | None) -> dict:
        user = self._user(user_id) if user_id else None
        start, limit = query.int("startIndex", 0), query.int("limit", 0)
        if start < 0 or limit < 0:
            raise HTTPError(400, "startIndex and limit must not be negative")
        filters = ItemFilter.from_query(query)
        matched = self.state.query(filters, user.id if user else None)
        page = matched[start:start + limit] if limit else matched[start:]
        page = self.server._faulty_page(matched, page, start)
        fields = {f.lower() for f in query.list("fields")}
        with_user_data = user is not None and query.bool("enableUserData") is not False
        result = {"Items": [self._dto(item, fields, user.id if with_user_data and user else None) for item in page],
                  "TotalRecordCount": len(matched) if query.bool("enableTotalRecordCount") is not False else 0,
                  "StartIndex": start}
        return result

    def _dto(self, item: Item, fields: set[str], user_id: str | None) -> dict:
        dto = item.dto(fields)
        if self.emby:
            # Emby leaves out what Fields does not name: OfficialRating on every item and a series' year, dates,
            # status and community rating too; tags come back as TagItems ([{Name, Id}]) and, up to 4.8, also
            # as Tags (4.9 leaves Tags null, so out).
            asked = EMBY_ASKED_SERIES_FIELDS if item.type == "Series" else {"officialrating": "OfficialRating"}
            for lowered, name in asked.items():
                if lowered not in fields:
                    dto.pop(name, None)
            if "Tags" in dto:
                dto["TagItems"] = [{"Name": tag, "Id": _tag_id(tag)} for tag in dto["Tags"]]
                if version_tuple(self.server.version) >= (4, 9):
                    del dto["Tags"]
        if user_id:
            dto["UserData"] = self.state.user_data_dto(user_id, item)
        return dto

    def _resume(self, query: Query, user_id: str) -> tuple[int, Any]:
        user = self._user(user_id)
        start, limit = query.int("startIndex", 0), query.int("limit", 0)
        types = {t.lower() for t in query.list("includeItemTypes")}
        matched = self.state.resume(user.id, types)
        page = matched[start:start + limit] if limit else matched[start:]
        fields = {f.lower() for f in query.list("fields")}
        return 200, {"Items": [self._dto(item, fields, user.id) for item in page],
                     "TotalRecordCount": len(matched), "StartIndex": start}

    def resume_jellyfin(self, query: Query, body: Any) -> tuple[int, Any]:
        user_id = query.get("userId")
        if not user_id:
            raise HTTPError(400, "userId is required with an API key")
        return self._resume(query, user_id)

    def resume_user_path(self, query: Query, body: Any, user_id: str) -> tuple[int, Any]:
        return self._resume(query, user_id)

    def image(self, query: Query, body: Any, item_id: str, kind: str) -> tuple[int, Any]:
        if item_id not in self.state.items:
            raise HTTPError(404, "item not found")
        return 200, PIXEL

    def stream(self, query: Query, body: Any, item_id: str) -> tuple[int, Any]:
        """A static stream of an episode (what a picks library's .strm file plays); needs the API key."""
        item = self.state.items.get(self.state._normal_id(item_id))
        if item is None or item.type != "Episode":
            raise HTTPError(404, "item not found")
        return 200, STREAM

    # -- played state ----------------------------------------------------------------------------
    def _mark(self, user_id: str, item_id: str, played: bool, when: datetime | None) -> tuple[int, Any]:
        user = self._user(user_id)
        item = self.state.items.get(item_id)
        if item is None:
            raise HTTPError(404, "item not found")
        self.state.mark_played(user.id, item.id, played, when)
        data = self.state.user_data_dto(user.id, item)
        return 200, data

    def mark_played_jellyfin(self, query: Query, body: Any, item_id: str) -> tuple[int, Any]:
        return self._mark(query.get("userId") or "", item_id, True, _parse_when(query.get("datePlayed")))

    def unmark_played_jellyfin(self, query: Query, body: Any, item_id: str) -> tuple[int, Any]:
        return self._mark(query.get("userId") or "", item_id, False, None)

    def mark_played_user_path(self, query: Query, body: Any, user_id: str, item_id: str) -> tuple[int, Any]:
        return self._mark(user_id, item_id, True, _parse_when(query.get("datePlayed")))

    def unmark_played_user_path(self, query: Query, body: Any, user_id: str, item_id: str) -> tuple[int, Any]:
        return self._mark(user_id, item_id, False, None)


def _tag_id(name: str) -> int:
    """Emby tag ids are int64 (NameLongIdPair); stable per tag name."""
    return int(hashlib.md5(f"tag/{name.casefold()}".encode()).hexdigest()[:12], 16)


def _parse_when(value: str | None) -> datetime | None:
    if not value:
        return None
    for fmt in ("%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(value[:26].rstrip("Z") + ("Z" if "Z" in fmt else ""), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise HTTPError(400, "datePlayed is not a date")


@dataclass(frozen=True)
class ItemFilter:
    """The /Items filters aperture uses, normalised so results can be cached per filter."""

    parent_id: str | None
    types: frozenset[str]
    recursive: bool
    ids: tuple[str, ...]
    is_played: bool | None
    is_favorite: bool | None
    parent_index: int | None
    exclude_virtual: bool
    sort_by: tuple[str, ...]
    descending: bool
    filters: frozenset[str] = frozenset()  # ItemFilter names, lowercased: Jellyfin `filters`, Emby `Filters`
    special_season: bool | None = None  # Emby 4.9 `IsSpecialSeason` (applied only where the flavour has it)
    min_saved: datetime | None = None  # `minDateLastSaved`: items saved at or after this time

    @property
    def needs_user_data(self) -> bool:
        """Whether only items the user has data for can match (so the query may start from those)."""
        return bool(self.filters & {"isplayed", "isfavorite", "isresumable", "likes", "dislikes",
                                    "isfavoriteorlikes"})

    @classmethod
    def from_query(cls, query: Query) -> ItemFilter:
        return cls(
            parent_id=query.get("parentId"),
            types=frozenset(t.lower() for t in query.list("includeItemTypes")),
            recursive=bool(query.bool("recursive")),
            ids=tuple(query.list("ids")),
            is_played=query.bool("isPlayed"),
            is_favorite=query.bool("isFavorite"),
            parent_index=query.int("parentIndexNumber", -1) if query.get("parentIndexNumber") else None,
            exclude_virtual="virtual" in {t.lower() for t in query.list("excludeLocationTypes")},
            sort_by=tuple(s.lower() for s in query.list("sortBy")),
            descending=(query.get("sortOrder") or "").lower().startswith("desc"),
            filters=frozenset(f.strip().lower() for f in query.list("filters")),
            special_season=query.bool("IsSpecialSeason"),
            min_saved=_parse_date(query.get("minDateLastSaved")),
        )


def _parse_date(value: str | None) -> datetime | None:
    """An ISO 8601 date-time parameter (naive = UTC); 400 if unparsable, as the real servers answer."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPError(400, f"not a date: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
