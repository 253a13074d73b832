"""Emby 4.8 and 4.9: the `X-Emby-Token` header, the `/emby` base path, PascalCase query parameters with
comma-joined arrays, `/Users/Query` and `/Library/VirtualFolders/Query` listings, `api_key` in URLs, policies
that list libraries by Guid."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aperture_resources.media_server.base import EPISODE_FIELDS, SERIES_FIELDS, MediaServerClient


class EmbyClient(MediaServerClient):
    kind = "Emby"
    prefix = "/emby"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-Emby-Token": api_key}

    def query(self, **params: Any) -> dict[str, Any]:
        return {name[:1].upper() + name[1:]: _value(value) for name, value in params.items() if value is not None}

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

    def resume_path(self, user_id: str) -> tuple[str, dict[str, Any]]:
        return f"/Users/{user_id}/Items/Resume", {}

    def count_params(self) -> dict[str, Any]:
        return {}  # the spec has no such parameter: Emby always counts

    def real_episode_params(self) -> dict[str, Any]:
        return {}  # 4.8 has no location filter; the base class drops virtual episodes itself

    def refresh_params(self) -> dict[str, Any]:
        return {"recursive": True}

    def mark_played(self, user_id: str, item_id: str, when: datetime | None = None) -> None:
        params = {"DatePlayed": when.strftime("%Y%m%d%H%M%S")} if when is not None else None
        self.request("POST", f"/Users/{user_id}/PlayedItems/{item_id}", params)

    def create_library(self, name: str, path: str) -> None:
        self.request("POST", "/Library/VirtualFolders",
                     body={"Name": name, "CollectionType": "tvshows", "Paths": [path], "RefreshLibrary": False})

    def delete_library(self, folder: dict) -> None:
        """By Id (4.8's RemoveVirtualFolder body)."""
        self.request("POST", "/Library/VirtualFolders/Delete",
                     body={"Id": str(folder.get("Id") or folder["ItemId"]), "RefreshLibrary": False})

    def permission_id(self, folder: dict) -> str:
        return str(folder.get("Guid") or folder["ItemId"])  # EnabledFolders hold the Guid; Items use ItemId

    def api_key_param(self) -> str:
        return "api_key"

    def series_fields(self) -> list[str]:
        # Emby leaves out what it is not asked for, even fields Jellyfin always sends (its Fields is free text)
        return [*SERIES_FIELDS, "ProductionYear", "PremiereDate", "EndDate", "Status", "OfficialRating",
                "CommunityRating"]

    def episode_fields(self) -> list[str]:
        return [*EPISODE_FIELDS, "PremiereDate", "RunTimeTicks"]  # the episode NFO's <aired> and <runtime>


def _value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return value
