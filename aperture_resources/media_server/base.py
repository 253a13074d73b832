"""What every stage needs from a media server, as one abstract client.

Jellyfin and Emby speak the same item model; they differ in auth, base path, user and library listing,
parameter casing and array encoding, write routes, permission ids and stream URLs. Each difference is an
abstract method here, implemented once in `jellyfin.py` or `emby.py`: nothing outside this package branches
on the server type. Reads page concurrently (bounded) and verify completeness, because a partial catalog
read must never be mistaken for items removed from the server.
"""

from __future__ import annotations

import platform
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from aperture_resources.settings import ConfigError

CLIENT_NAME = "aperture"
CLIENT_VERSION = "0.1.0"
DEVICE_ID = uuid.uuid5(uuid.NAMESPACE_DNS, f"aperture.{platform.node()}").hex

SERIES_FIELDS = ["ProviderIds", "Genres", "Studios", "Tags", "Overview", "Path", "DateCreated",
                 "SortName", "OriginalTitle"]
SEASON_FIELDS = ["SortName"]
EPISODE_FIELDS = ["ProviderIds", "Path", "DateCreated"]


class MediaServerError(Exception):
    """The media server failed or answered something unusable; the message says what and where."""


class IncompleteReadError(MediaServerError):
    """A paged read returned fewer (or more) items than the server said it holds."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


class MediaServerClient(ABC):
    """Paging, retries, completeness checks and error sentences; subclasses own every server difference."""

    kind: str  # the product name, for messages
    prefix: str  # the API's base path under the server URL

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        concurrency: int = 4,
        page_size: int = 1000,
        retries: int = 4,
        backoff: float = 0.5,
        event_hooks: Mapping[str, list[Callable]] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.concurrency = max(1, concurrency)
        self.page_size = page_size
        self.requests_made = 0
        self._in_flight = threading.BoundedSemaphore(self.concurrency)
        self._http = httpx.Client(
            base_url=self.base_url + self.prefix,
            headers={**self.auth_headers(api_key), "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=self.concurrency * 2),
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

    def _send_once(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> httpx.Response:
        with self._in_flight:  # however many reads run at once, at most `concurrency` requests are in flight
            self.requests_made += 1
            response = self._http.request(method, path, params=params, json=body)
        if response.status_code >= 500 or response.status_code == 429:
            response.raise_for_status()
        return response

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                body: Any = None) -> httpx.Response:
        """Send with retries on 5xx/429/transport errors; turn failures into one clear sentence."""
        where = f"{method} {self.prefix}{path}"
        try:
            response = self._send(method, path, params, body)
        except httpx.HTTPStatusError as exc:
            raise MediaServerError(
                f"{self.kind} server at {self.base_url} kept failing on {where} "
                f"(HTTP {exc.response.status_code})."
            ) from None
        except httpx.TimeoutException:
            raise MediaServerError(f"{self.kind} server at {self.base_url} timed out on {where}.") from None
        except httpx.TransportError as exc:
            raise ConfigError(
                f"APERTURE_MEDIA_SERVER_URL: cannot reach the {self.kind} server at {self.base_url} "
                f"({type(exc).__name__})."
            ) from None
        if response.status_code in (401, 403):
            raise ConfigError(
                f"APERTURE_MEDIA_SERVER_API_KEY was rejected by the {self.kind} server at {self.base_url} "
                f"(HTTP {response.status_code} on {where})."
            )
        if response.status_code == 404:
            raise MediaServerError(f"{self.kind} server at {self.base_url} has no {where} (HTTP 404); "
                                   "check APERTURE_MEDIA_SERVER_TYPE.")
        if response.status_code >= 400:
            raise MediaServerError(f"{self.kind} server refused {where} (HTTP {response.status_code}): "
                                   f"{response.text[:200]}")
        return response

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.request("GET", path, params)
        try:
            return response.json()
        except ValueError:
            raise MediaServerError(
                f"{self.kind} server sent a malformed (non-JSON) response to GET {self.prefix}{path}."
            ) from None

    def _expect_list(self, payload: Any, path: str) -> list[dict]:
        if not isinstance(payload, list) or not all(isinstance(x, dict) for x in payload):
            raise MediaServerError(f"{self.kind} server sent a malformed response to GET {path}: "
                                   "expected a list of objects.")
        return payload

    def _page(self, path: str, params: dict[str, Any], start: int, limit: int) -> tuple[list[dict], int | None]:
        payload = self.get_json(path, {**params, **self.query(startIndex=start, limit=limit)})
        items = payload.get("Items") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            raise MediaServerError(f"{self.kind} server sent a malformed page for GET {self.prefix}{path}: "
                                   "no Items list.")
        total = payload.get("TotalRecordCount")
        return items, total if isinstance(total, int) else None

    def fetch_all(self, path: str, params: dict[str, Any]) -> list[dict]:
        """Every item of a paged query, pages fetched `concurrency` at a time, checked complete."""
        size = self.page_size
        params = {**params, **self.count_params()}
        first, total = self._page(path, params, 0, size)
        if len(first) < size:
            pages = [first]
        elif total is not None:
            starts = range(size, total, size)
            with ThreadPoolExecutor(self.concurrency) as pool:
                rest = list(pool.map(lambda s: self._page(path, params, s, size)[0], starts))
            pages = [first, *rest]
            tail, _ = self._page(path, params, total, size) if total % size == 0 else ([], None)
            if tail:
                raise IncompleteReadError(f"{self.kind} server has more items than its TotalRecordCount "
                                          f"({total}) for GET {self.prefix}{path}; the library changed "
                                          "during the read.")
        else:
            pages, start, page = [first], size, first
            while len(page) == size:
                page, _ = self._page(path, params, start, size)
                pages.append(page)
                start += size
        items = [item for page in pages for item in page]
        short_pages = [i for i, page in enumerate(pages[:-1]) if len(page) != size]
        if (total is not None and len(items) != total) or short_pages:
            raise IncompleteReadError(
                f"{self.kind} server returned {len(items)} items for GET {self.prefix}{path} but reported "
                f"{total}; nothing was changed."
            )
        ids = [str(item["Id"]) for item in items if item.get("Id") is not None]
        if len(set(ids)) != len(ids):  # an unstable sort order repeated an item, so another was never sent
            raise IncompleteReadError(
                f"{self.kind} server sent duplicate item ids across the pages of GET {self.prefix}{path} (its "
                "order changed during the read, so other items were skipped); nothing was changed."
            )
        return items

    # -- reads ------------------------------------------------------------------------------------
    def system_info(self) -> dict:
        return self.get_json("/System/Info")

    def items(self, item_type: str, parent_id: str, fields: Iterable[str], **extra: Any) -> list[dict]:
        """All items of one type under a library (admin view, no user data)."""
        params = self.query(
            parentId=parent_id,
            includeItemTypes=[item_type],
            recursive=True,
            fields=list(fields),
            sortBy=["SortName"],
            enableUserData=False,
            enableImages=True,
            **extra,
        )
        return self.fetch_all("/Items", params)

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

    def items_by_id(self, ids: Sequence[str], fields: Iterable[str]) -> list[dict]:
        """Look items up by id (admin view), 100 ids per request."""
        found: list[dict] = []
        for start in range(0, len(ids), 100):
            chunk = list(ids[start:start + 100])
            found += self.fetch_all("/Items", self.query(ids=chunk, fields=list(fields), enableUserData=False))
        return found

    def poster_url(self, item_id: str, tag: str | None, max_width: int = 600) -> str | None:
        if not tag:
            return None
        query = urlencode({"tag": tag, "maxWidth": max_width})
        return f"{self.base_url}{self.prefix}/Items/{item_id}/Images/Primary?{query}"

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
