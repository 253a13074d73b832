"""What every stage needs from a media server, as one abstract client.

Jellyfin and Emby speak the same item model; they differ in auth, base path, user and library listing,
parameter casing and array encoding, write routes, permission ids and stream URLs. Each difference is an
abstract method here, implemented once in `jellyfin.py` or `emby.py`: nothing outside this package branches
on the server type. Reads page concurrently (bounded) and verify completeness, because a partial catalog
read must never be mistaken for items removed from the server.

Answers are untrusted: each request has a wall-clock deadline from send to last byte (every socket wait is cut
to what is left of it, so a server trickling a byte at a time cannot hold a run), a body is streamed and
refused past a size limit before it fills memory, and every error message is redacted of the API key, since
servers echo rejected credentials.
"""

from __future__ import annotations

import functools
import json
import platform
import ssl
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpcore
import httpx
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from aperture_resources.redaction import redact
from aperture_resources.settings import ConfigError

CLIENT_NAME = "aperture"
CLIENT_VERSION = "0.1.0"
DEVICE_ID = uuid.uuid5(uuid.NAMESPACE_DNS, f"aperture.{platform.node()}").hex

SERIES_FIELDS = ["ProviderIds", "Genres", "Studios", "Tags", "Overview", "Path", "DateCreated",
                 "SortName", "OriginalTitle"]
SEASON_FIELDS = ["SortName"]
EPISODE_FIELDS = ["ProviderIds", "Path", "DateCreated"]
MB = 1024 * 1024


class MediaServerError(Exception):
    """The media server failed or answered something unusable; the message says what and where."""


class IncompleteReadError(MediaServerError):
    """A paged read returned fewer (or more) items than the server said it holds."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


class _Deadline(threading.local):
    """When the request this thread is sending must be done (time.monotonic), or None between requests."""

    at: float | None = None

    def clamp(self, timeout: float | None, expired: type[Exception]) -> float | None:
        """How long one socket wait may take now: `timeout` cut to what is left; `expired` once nothing is."""
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise expired("the request's deadline passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the deadline of the request using it (httpx's own
    timeouts apply to each read, so a byte every few seconds would keep a request alive forever)."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        timeout = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sockets, wrapped in `_DeadlineStream`."""

    def __init__(self, deadline: _Deadline) -> None:
        self._backend = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, self._deadline.clamp(timeout, httpcore.ConnectTimeout),
                                           local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying context for the process: loading the CA bundle costs about 20 ms, and a client is made per
    user in the per-user stages (contexts are safe to share between connections and threads)."""
    return httpx.create_ssl_context()


def _deadline_transport(limits: httpx.Limits, deadline: _Deadline) -> httpx.HTTPTransport:
    """httpx's transport over a connection pool built with `_DeadlineBackend` (httpx has no option for a network
    backend, so its pool is replaced by an equal one that has it). A custom transport also means httpx ignores
    HTTP(S)_PROXY: requests go straight to APERTURE_MEDIA_SERVER_URL."""
    transport = httpx.HTTPTransport(limits=limits, verify=_ssl_context())
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_ssl_context(), max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
        network_backend=_DeadlineBackend(deadline))
    return transport


class MediaServerClient(ABC):
    """Paging, retries, completeness checks and error sentences; subclasses own every server difference."""

    kind: str  # the product name, for messages
    prefix: str  # the API's base path under the server URL

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        max_response_mb: int = 256,
        concurrency: int = 4,
        page_size: int = 1000,
        retries: int = 4,
        backoff: float = 0.5,
        event_hooks: Mapping[str, list[Callable]] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout  # seconds from sending a request to its last byte
        self.max_response_mb = max_response_mb
        self.concurrency = max(1, concurrency)
        self.page_size = page_size
        self.requests_made = 0
        self._in_flight = threading.BoundedSemaphore(self.concurrency)
        self._deadline = _Deadline()
        self._http = httpx.Client(
            base_url=self.base_url + self.prefix,
            headers={**self.auth_headers(api_key), "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=_deadline_transport(httpx.Limits(max_connections=self.concurrency * 2), self._deadline),
            event_hooks=dict(event_hooks or {}),
        )
        self._send = retry(
            retry=retry_if_exception(_retryable),
            wait=wait_exponential_jitter(initial=backoff, max=20 * backoff, jitter=backoff),
            stop=stop_after_attempt(retries),
            reraise=True,
        )(self._send_once)

    # -- server specifics -------------------------------------------------------------------------
    @abstractmethod
    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Headers that authenticate every request."""

    @abstractmethod
    def query(self, **params: Any) -> dict[str, Any]:
        """Spell query parameters the way this server's API documents them."""

    @abstractmethod
    def users(self) -> list[dict]:
        """Every user (UserDto with Policy)."""

    @abstractmethod
    def libraries(self) -> list[dict]:
        """Every library (VirtualFolderInfo)."""

    @abstractmethod
    def user_items_path(self, user_id: str) -> tuple[str, dict[str, Any]]:
        """Route and fixed parameters of the items query seen as one user (with UserData)."""

    @abstractmethod
    def resume_path(self, user_id: str) -> tuple[str, dict[str, Any]]:
        """Route and fixed parameters of the user's in-progress items."""

    @abstractmethod
    def count_params(self) -> dict[str, Any]:
        """Parameters that make a paged query report TotalRecordCount."""

    @abstractmethod
    def real_episode_params(self) -> dict[str, Any]:
        """Parameters that leave out "missing episode" placeholders where the server can filter them."""

    @abstractmethod
    def refresh_params(self) -> dict[str, Any]:
        """Parameters of a full, recursive library rescan."""

    @abstractmethod
    def mark_played(self, user_id: str, item_id: str, when: datetime | None = None) -> None:
        """Mark one item played for one user."""

    @abstractmethod
    def create_library(self, name: str, path: str) -> None:
        """Create a TV library at `path` without starting a scan."""

    @abstractmethod
    def delete_library(self, folder: dict) -> None:
        """Remove a library (its configuration only; the server never deletes the folder on disk)."""

    @abstractmethod
    def permission_id(self, folder: dict) -> str:
        """The id a user policy's EnabledFolders uses for this library."""

    def series_fields(self) -> list[str]:
        """The `fields` of a series read: everything the catalog and the library's NFOs use."""
        return SERIES_FIELDS

    def episode_fields(self) -> list[str]:
        """The `fields` of an episode read: everything the catalog and the library's NFOs use."""
        return EPISODE_FIELDS

    @abstractmethod
    def api_key_param(self) -> str:
        """The query parameter that carries an API key inside a URL."""

    # -- plumbing ---------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MediaServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, message: str, error: type[Exception] = MediaServerError) -> Exception:
        """An error whose message never holds the API key, whatever the server echoed into it."""
        return error(redact(message, [self._api_key]))

    def _send_once(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> tuple[int, bytes]:
        """One attempt: (status, body), the body read in full within the deadline and the size limit."""
        with self._in_flight:  # however many reads run at once, at most `concurrency` requests are in flight
            self.requests_made += 1
            self._deadline.at = time.monotonic() + self.timeout
            try:
                with self._http.stream(method, path, params=params, json=body) as response:
                    if response.status_code >= 500 or response.status_code == 429:
                        response.raise_for_status()
                    return response.status_code, self._read(response, f"{method} {self.prefix}{path}")
            finally:
                self._deadline.at = None

    def _read(self, response: httpx.Response, where: str) -> bytes:
        """The decoded body (what fills memory), refused as soon as it is known to exceed the limit: by its
        Content-Length when sent uncompressed, else by counting, so memory holds at most the limit plus one
        network read once decoded."""
        limit = self.max_response_mb * MB
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit and not response.headers.get("Content-Encoding"):
            raise self._too_big(where)
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise self._too_big(where)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, where: str) -> Exception:
        return self._error(f"{self.kind} server at {self.base_url} sent more than {self.max_response_mb} MB for "
                           f"{where}; raise APERTURE_MEDIA_SERVER_MAX_RESPONSE_MB if the library is that large.")

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None) -> bytes:
        """Send with retries on 5xx/429/transport errors and timeouts; the body of a 2xx/3xx answer. Failures
        become one clear sentence, without the API key."""
        where = f"{method} {self.prefix}{path}"
        try:
            status, content = self._send(method, path, params, body)
        except httpx.HTTPStatusError as exc:
            raise self._error(f"{self.kind} server at {self.base_url} kept failing on {where} "
                              f"(HTTP {exc.response.status_code}).") from None
        except httpx.TimeoutException:
            raise self._error(f"APERTURE_MEDIA_SERVER_TIMEOUT_SECONDS ({self.timeout:g} s per request) ran out: the "
                              f"{self.kind} server at {self.base_url} timed out on {where}.") from None
        except httpx.TransportError as exc:
            raise self._error(f"APERTURE_MEDIA_SERVER_URL: cannot reach the {self.kind} server at {self.base_url} "
                              f"({type(exc).__name__}).", ConfigError) from None
        if status in (401, 403):
            raise self._error(f"APERTURE_MEDIA_SERVER_API_KEY was rejected by the {self.kind} server at "
                              f"{self.base_url} (HTTP {status} on {where}).", ConfigError)
        if status == 404:
            raise self._error(f"{self.kind} server at {self.base_url} has no {where} (HTTP 404); "
                              "check APERTURE_MEDIA_SERVER_TYPE.")
        if status >= 400:
            # Redact before cutting to length: a key cut in half would no longer match.
            answer = redact(content.decode("utf-8", errors="replace"), [self._api_key])[:200]
            raise self._error(f"{self.kind} server refused {where} (HTTP {status}): {answer}")
        return content

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        content = self.request("GET", path, params)
        try:
            return json.loads(content)
        except ValueError:
            raise self._error(
                f"{self.kind} server sent a malformed (non-JSON) response to GET {self.prefix}{path}."
            ) from None

    def _expect_list(self, payload: Any, path: str) -> list[dict]:
        if not isinstance(payload, list) or not all(isinstance(x, dict) for x in payload):
            raise self._error(f"{self.kind} server sent a malformed response to GET {path}: "
                              "expected a list of objects.")
        return payload

    def _page(self, path: str, params: dict[str, Any], start: int, limit: int) -> tuple[list[dict], int | None]:
        payload = self.get_json(path, {**params, **self.query(startIndex=start, limit=limit)})
        items = payload.get("Items") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            raise self._error(f"{self.kind} server sent a malformed page for GET {self.prefix}{path}: "
                              "no Items list.")
        total = payload.get("TotalRecordCount")
        return items, total if isinstance(total, int) else None

    def iter_pages(self, path: str, params: dict[str, Any], lookahead: int | None = None
                   ) -> Iterator[tuple[list[dict], int | None]]:
        """(page, the server's TotalRecordCount) for every page of a paged query, in order, `lookahead` pages
        (default: `concurrency`) fetched ahead, so memory holds a few pages, never the whole list.

        The read is checked as it goes (every page but the last is full, no more items than the count, the
        count reached) and raises IncompleteReadError after the pages already yielded: a caller must act on
        them only once the iterator is exhausted. Items repeated across pages (an unstable sort order) are the
        caller's to check (`fetch_all` does, the catalog does it in the database)."""
        size = self.page_size
        params = {**params, **self.count_params()}
        first, total = self._page(path, params, 0, size)
        seen = len(first)
        yield first, total
        if len(first) == size and total is not None:
            starts = list(range(size, total, size))
            with ThreadPoolExecutor(self.concurrency) as pool:
                ahead = max(1, lookahead or self.concurrency)
                pending = deque(pool.submit(self._page, path, params, s, size) for s in starts[:ahead])
                for i in range(len(starts)):
                    page, _ = pending.popleft().result()
                    if i + ahead < len(starts):
                        pending.append(pool.submit(self._page, path, params, starts[i + ahead], size))
                    if len(page) != size and i < len(starts) - 1:
                        raise self._incomplete(path, seen + len(page), total)
                    seen += len(page)
                    yield page, total
            tail, _ = self._page(path, params, total, size) if total % size == 0 else ([], None)
            if tail:
                raise self._error(f"{self.kind} server has more items than its TotalRecordCount ({total}) for "
                                  f"GET {self.prefix}{path}; the library changed during the read.",
                                  IncompleteReadError)
        elif len(first) == size:  # no count: read on until a short page
            start, page = size, first
            while len(page) == size:
                page, _ = self._page(path, params, start, size)
                seen += len(page)
                start += size
                yield page, total
        if total is not None and seen != total:
            raise self._incomplete(path, seen, total)

    def _incomplete(self, path: str, seen: int, total: int | None) -> Exception:
        return self._error(f"{self.kind} server returned {seen} items for GET {self.prefix}{path} but reported "
                           f"{total}; nothing was changed.", IncompleteReadError)

    def fetch_all(self, path: str, params: dict[str, Any]) -> list[dict]:
        """Every item of a paged query, pages fetched `concurrency` at a time, checked complete."""
        items = [item for page, _ in self.iter_pages(path, params) for item in page]
        ids = [str(item["Id"]) for item in items if item.get("Id") is not None]
        if len(set(ids)) != len(ids):  # an unstable sort order repeated an item, so another was never sent
            raise self._error(
                f"{self.kind} server sent duplicate item ids across the pages of GET {self.prefix}{path} (its "
                "order changed during the read, so other items were skipped); nothing was changed.",
                IncompleteReadError)
        return items

    # -- reads ------------------------------------------------------------------------------------
    def system_info(self) -> dict:
        return self.get_json("/System/Info")

    def items(self, item_type: str, parent_id: str, fields: Iterable[str], **extra: Any) -> list[dict]:
        """All items of one type under a library (admin view, no user data)."""
        return self.fetch_all("/Items", self.items_params(item_type, parent_id, fields, **extra))

    def items_params(self, item_type: str, parent_id: str, fields: Iterable[str], **extra: Any) -> dict[str, Any]:
        """The query of `items` (for `iter_pages`, or a count with limit 1)."""
        return self.query(
            parentId=parent_id,
            includeItemTypes=[item_type],
            recursive=True,
            fields=list(fields),
            sortBy=["SortName"],
            enableUserData=False,
            enableImages=True,
            **extra,
        )

    def episodes(self, parent_id: str, fields: Iterable[str]) -> list[dict]:
        """Real episodes under a library, without "missing episode" placeholders (LocationType Virtual):
        filtered by the server where its API can, and always here (Emby 4.8 has no such filter)."""
        items = self.items("Episode", parent_id, fields, **self.real_episode_params())
        return [e for e in items if e.get("LocationType") != "Virtual"]

    def _user_items_query(self, user_id: str, item_type: str | Sequence[str], fields: Iterable[str],
                          **extra: Any) -> tuple[str, dict[str, Any]]:
        path, base = self.user_items_path(user_id)
        types = [item_type] if isinstance(item_type, str) else list(item_type)
        return path, {**base, **self.query(includeItemTypes=types, recursive=True, fields=list(fields),
                                           enableUserData=True, **extra)}

    def user_items(self, user_id: str, item_type: str | Sequence[str], fields: Iterable[str],
                   **extra: Any) -> list[dict]:
        """All items of one type (or several) with the user's UserData (filters such as isPlayed go in extra)."""
        return self.fetch_all(*self._user_items_query(user_id, item_type, fields, **extra))

    def user_items_page(self, user_id: str, item_type: str | Sequence[str], fields: Iterable[str], start: int,
                        limit: int, **extra: Any) -> tuple[list[dict], int | None]:
        """One page of `user_items` and the server's TotalRecordCount for the whole query (None if it sent
        none), for reads that stop early, such as newest plays first down to a known date."""
        path, params = self._user_items_query(user_id, item_type, fields, **extra)
        return self._page(path, {**params, **self.count_params()}, start, limit)

    def resume_items(self, user_id: str, fields: Iterable[str]) -> list[dict]:
        """The user's in-progress (resume) episodes, paged."""
        path, base = self.resume_path(user_id)
        params = {**base, **self.query(includeItemTypes=["Episode"], fields=list(fields), enableUserData=True)}
        return self.fetch_all(path, params)

    def parental_ratings(self) -> list[dict]:
        """The server's parental rating scale, `[{Name, Value}]` (user policies' MaxParentalRating is a Value)."""
        return self._expect_list(self.get_json("/Localization/ParentalRatings"), "/Localization/ParentalRatings")

    def disliked_series(self, user_id: str, fields: Iterable[str]) -> list[dict]:
        """The series the user marked "dislike" (`UserData.Likes` false)."""
        return self.user_items(user_id, "Series", fields, filters=["Dislikes"])

    def items_by_id(self, ids: Sequence[str], fields: Iterable[str]) -> list[dict]:
        """Look items up by id (admin view), 100 ids per request."""
        found: list[dict] = []
        for start in range(0, len(ids), 100):
            chunk = list(ids[start:start + 100])
            found += self.fetch_all("/Items", self.query(ids=chunk, fields=list(fields), enableUserData=False))
        return found

    def poster_path(self, item_id: str, tag: str | None, max_width: int = 600) -> str | None:
        """The poster's address relative to the server's base URL: what the catalog stores, so a server that
        moves (host, port, reverse proxy) changes no row."""
        if not tag:
            return None
        query = urlencode({"tag": tag, "maxWidth": max_width})
        return f"{self.prefix}/Items/{quote(item_id, safe='')}/Images/Primary?{query}"

    def stream_url_template(self, api_key: str | None = None) -> str:
        """The static stream URL of any item, `{item_id}` standing for its (URL-quoted) id; carries `api_key`
        only when given (the user opted in)."""
        url = f"{self.base_url}{self.prefix}/Videos/{{item_id}}/stream?static=true"
        return url + (f"&{self.api_key_param()}={quote(api_key, safe='')}" if api_key else "")

    # -- writes used by the library stage ---------------------------------------------------------
    def user(self, user_id: str) -> dict:
        return self.get_json(f"/Users/{user_id}")

    def set_user_policy(self, user_id: str, policy: dict) -> None:
        self.request("POST", f"/Users/{user_id}/Policy", body=policy)

    def refresh_item(self, item_id: str) -> None:
        self.request("POST", f"/Items/{item_id}/Refresh",
                     self.query(metadataRefreshMode="Default", imageRefreshMode="Default", **self.refresh_params()))
