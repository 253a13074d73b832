"""Jellyfin 10.10 to 12: the `Authorization: MediaBrowser ... Token=` header (the only form 12 accepts by
default), camelCase query parameters with repeated keys for arrays, `ApiKey` in URLs, policies that list
libraries by ItemId."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aperture_resources.media_server.base import CLIENT_NAME, CLIENT_VERSION, DEVICE_ID, MediaServerClient


class JellyfinClient(MediaServerClient):
    kind = "Jellyfin"
    prefix = ""

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f'MediaBrowser Client="{CLIENT_NAME}", Device="{CLIENT_NAME}", '
                                 f'DeviceId="{DEVICE_ID}", Version="{CLIENT_VERSION}", Token="{api_key}"'}

    def query(self, **params: Any) -> dict[str, Any]:
        # booleans as the API spells them; lists become repeated keys (style form, explode true)
        return {name: ("true" if value else "false") if isinstance(value, bool) else value
                for name, value in params.items() if value is not None}

    def users(self) -> list[dict]:
        return self._expect_list(self.get_json("/Users"), "/Users")

    def libraries(self) -> list[dict]:
        return self._expect_list(self.get_json("/Library/VirtualFolders"), "/Library/VirtualFolders")

    def user_items_path(self, user_id: str) -> tuple[str, dict[str, Any]]:
        return "/Items", {"userId": user_id}  # /Users/{id}/Items is gone from 10.11 and 12

    def resume_path(self, user_id: str) -> tuple[str, dict[str, Any]]:
        return "/UserItems/Resume", {"userId": user_id}

    def count_params(self) -> dict[str, Any]:
        return self.query(enableTotalRecordCount=True)

    def real_episode_params(self) -> dict[str, Any]:
        return {"excludeLocationTypes": ["Virtual"]}

    def refresh_params(self) -> dict[str, Any]:
        return {}  # the spec has no Recursive: a folder refresh always recurses

    def mark_played(self, user_id: str, item_id: str, when: datetime | None = None) -> None:
        params = {"userId": user_id}
        if when is not None:
            params["datePlayed"] = when.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        self.request("POST", f"/UserPlayedItems/{item_id}", params)

    def create_library(self, name: str, path: str) -> None:
        self.request("POST", "/Library/VirtualFolders",
                     {"name": name, "collectionType": "tvshows", "paths": [path], "refreshLibrary": False})

    def delete_library(self, folder: dict) -> None:
        self.request("DELETE", "/Library/VirtualFolders", {"name": folder["Name"], "refreshLibrary": False})

    def permission_id(self, folder: dict) -> str:
        return str(folder["ItemId"])

    def api_key_param(self) -> str:
        return "ApiKey"  # lowercase api_key is legacy auth, off by default from 12.0
