"""HTTP clients for Jellyfin and Emby.

Both speak the same item model; they differ in auth header, base path, user listing, parameter
casing and array encoding. Reads page concurrently (bounded) and verify completeness, because a
partial catalog read must never be mistaken for items removed from the server.
"""

from __future__ import annotations

import platform
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

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


class MediaServerClient:
    """Shared behaviour; subclasses set the server specifics."""

    kind = "generic"
    prefix = ""

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
    def auth_headers(self, api_key: str) -> dict[str, str]:
        raise NotImplementedError

    def query(self, **params: Any) -> dict[str, Any]:
        """Spell query parameters the way this server's API documents them."""
        raise NotImplementedError

    def users(self) -> list[dict]:
        raise NotImplementedError

    def libraries(self) -> list[dict]:
        return self._expect_list(self.get_json("/Library/VirtualFolders"), "/Library/VirtualFolders")

    def user_items_path(self, user_id: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

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
        if self.kind != "Emby":  # Emby's spec has no such parameter; it always counts
            params = {**params, **self.query(enableTotalRecordCount=True)}
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
        filtered by the server where its API can (Jellyfin), and always here (Emby 4.8 has no such filter)."""
        extra = {"excludeLocationTypes": ["Virtual"]} if self.kind == "Jellyfin" else {}
        return [e for e in self.items("Episode", parent_id, fields, **extra) if e.get("LocationType") != "Virtual"]

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
        if self.kind != "Emby":  # Emby's spec has no such parameter; it always counts
            params = {**params, **self.query(enableTotalRecordCount=True)}
        return self._page(path, params, start, limit)

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

    def resume_path(self, user_id: str) -> tuple[str, dict[str, Any]]:
        return f"/Users/{user_id}/Items/Resume", {}

    def poster_url(self, item_id: str, tag: str | None, max_width: int = 600) -> str | None:
        if not tag:
            return None
        query = urlencode({"tag": tag, "maxWidth": max_width})
        return f"{self.base_url}{self.prefix}/Items/{item_id}/Images/Primary?{query}"

    # -- writes used by the library stage ---------------------------------------------------------
    def user(self, user_id: str) -> dict:
        return self.get_json(f"/Users/{user_id}")

    def set_user_policy(self, user_id: str, policy: dict) -> None:
        self.request("POST", f"/Users/{user_id}/Policy", body=policy)

    def refresh_item(self, item_id: str) -> None:
        # Recursive is Emby's parameter; Jellyfin's spec has none (its folder refresh always recurses).
        self.request("POST", f"/Items/{item_id}/Refresh",
                     self.query(recursive=True if self.kind == "Emby" else None, metadataRefreshMode="Default",
                                imageRefreshMode="Default"))


class JellyfinClient(MediaServerClient):
    kind = "Jellyfin"
    prefix = ""

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f'MediaBrowser Client="{CLIENT_NAME}", Device="{CLIENT_NAME}", '
                                 f'DeviceId="{DEVICE_ID}", Version="{CLIENT_VERSION}", Token="{api_key}"'}

    def query(self, **params: Any) -> dict[str, Any]:
        return {name: _jellyfin_value(value) for name, value in params.items() if value is not None}

    def users(self) -> list[dict]:
        return self._expect_list(self.get_json("/Users"), "/Users")

    def user_items_path(self, user_id: str) -> tuple[str, dict[str, Any]]:
        return "/Items", {"userId": user_id}

    def resume_path(self, user_id: str) -> tuple[str, dict[str, Any]]:
        return "/UserItems/Resume", {"userId": user_id}

    def mark_played(self, user_id: str, item_id: str, when: datetime | None = None) -> None:
        params = {"userId": user_id}
        if when is not None:
            params["datePlayed"] = when.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        self.request("POST", f"/UserPlayedItems/{item_id}", params)

    def create_library(self, name: str, path: str) -> None:
        self.request("POST", "/Library/VirtualFolders",
                     {"name": name, "collectionType": "tvshows", "paths": [path], "refreshLibrary": False})

    def delete_library(self, folder: dict) -> None:
        """Remove a library (its configuration only; the server never deletes the folder on disk)."""
        self.request("DELETE", "/Library/VirtualFolders", {"name": folder["Name"], "refreshLibrary": False})


class EmbyClient(MediaServerClient):
    kind = "Emby"
    prefix = "/emby"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-Emby-Token": api_key}

    def query(self, **params: Any) -> dict[str, Any]:
        return {name[:1].upper() + name[1:]: _emby_value(value)
                for name, value in params.items() if value is not None}

    def _query_list(self, path: str) -> list[dict]:
        payload = self.get_json(path)
        items = payload.get("Items") if isinstance(payload, dict) else None
        return self._expect_list(items, path)

    def users(self) -> list[dict]:
        return self._query_list("/Users/Query")

    def libraries(self) -> list[dict]:
        return self._query_list("/Library/VirtualFolders/Query")

    def user_items_path(self, user_id: str) -> tuple[str, dict[str, Any]]:
        return f"/Users/{user_id}/Items", {}

    def mark_played(self, user_id: str, item_id: str, when: datetime | None = None) -> None:
        params = {"DatePlayed": when.strftime("%Y%m%d%H%M%S")} if when is not None else None
        self.request("POST", f"/Users/{user_id}/PlayedItems/{item_id}", params)

    def create_library(self, name: str, path: str) -> None:
        self.request("POST", "/Library/VirtualFolders",
                     body={"Name": name, "CollectionType": "tvshows", "Paths": [path], "RefreshLibrary": False})

    def delete_library(self, folder: dict) -> None:
        """Remove a library by its Id (Emby 4.8's RemoveVirtualFolder body); the folder on disk stays."""
        self.request("POST", "/Library/VirtualFolders/Delete",
                     body={"Id": str(folder.get("Id") or folder["ItemId"]), "RefreshLibrary": False})


def _jellyfin_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value  # lists become repeated keys (style form, explode true)


def _emby_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return value
