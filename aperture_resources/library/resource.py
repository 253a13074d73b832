"""Where the per-user libraries live (as aperture writes them and as the media server sees them), how
their files point at the real episodes, and what each user's folder and library are called.

A user's folder is `<root>/users/<Safe Name> [<short id>]/ai-series`: the display name makes it readable,
the id suffix makes it unique (names collide) and findable after a rename (the existing folder with the
user's suffix is reused, so the server library keeps pointing at the right place).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from dagster import ConfigurableResource
from pydantic import Field

from aperture_resources.library.model import LibraryOptions
from aperture_resources.library.naming import SERIES_DIR, owner_of, picks_owner, safe_component
from aperture_resources.media_server import MediaServerClient, MediaServerResource
from aperture_resources.settings import DEFAULT_LIBRARY_NAME, require_strm_opt_in


def short_id(user_id: str) -> str:
    """The first 12 characters of a user id, normalised (GUIDs come with or without dashes)."""
    return re.sub(r"[^0-9a-z]", "", user_id.lower())[:12] or "user"


class LibraryResource(ConfigurableResource):
    """The picks libraries: where aperture writes them (APERTURE_LIBRARY_ROOT), on which media server (nested:
    the server's view of the same root is its `picks_root`), in which mode and under which name."""

    media_server: MediaServerResource
    root: str = Field(description="Where aperture writes the per-user folders (APERTURE_LIBRARY_ROOT)")
    mode: str = Field(default="symlink", description="symlink | strm (APERTURE_LIBRARY_MODE)")
    name_template: str = Field(default=DEFAULT_LIBRARY_NAME, description="APERTURE_LIBRARY_NAME")
    strm_api_key: bool = Field(default=False, description="Write the API key into .strm URLs "
                               "(APERTURE_LIBRARY_STRM_API_KEY)")

    def local_root(self) -> Path:
        return Path(self.root).absolute()

    def media_server_root(self) -> str:
        return (self.media_server.picks_root or str(self.local_root())).rstrip("/") or "/"

    def users_dir(self) -> Path:
        return self.local_root() / "users"

    def user_folder(self, user_id: str, user_name: str) -> str:
        """The user's existing folder (found by id suffix, so renames keep it), else a new safe name."""
        sid = short_id(user_id)
        if self.users_dir().is_dir():
            existing = sorted(p.name for p in self.users_dir().iterdir() if p.is_dir() and owner_of(p.name) == sid)
            if existing:
                return existing[0]
        return f"{safe_component(user_name, 200, fallback='User')} [{sid}]"

    def local_path(self, folder: str) -> Path:
        return self.users_dir() / folder / SERIES_DIR

    def server_path(self, folder: str) -> str:
        return str(PurePosixPath(self.media_server_root()) / "users" / folder / SERIES_DIR)

    def owner_of_location(self, location: str) -> str | None:
        """Short id of the user whose picks folder `location` (a server path) is; "" for anything else under
        the library root (nobody's, so hidden from everyone); outside the root, the owner of a folder laid out
        as a picks folder (one made under another root or data dir), else None."""
        path, root = PurePosixPath(location.rstrip("/") or "/"), PurePosixPath(self.media_server_root())
        if not path.is_relative_to(root):
            return picks_owner(location)
        if path.parent.parent == root / "users" and path.name == SERIES_DIR:
            return owner_of(path.parent.name) or ""
        return ""

    def owner_of_library(self, folder: dict) -> str | None:
        """Short id of the user a server library (VirtualFolderInfo) belongs to; None if not a picks library."""
        owners = {self.owner_of_location(str(loc)) for loc in folder.get("Locations") or []} - {None}
        return min(owners) if owners else None

    def library_name(self, user_name: str) -> str:
        """The user's library name; the user name is cleaned like a title (no control characters, slashes or
        dots at the ends; Jellyfin 12 refuses names that start or end with whitespace)."""
        return self.name_template.format(name=safe_component(user_name, 120, fallback="User")).strip()

    def options(self, client: MediaServerClient, folders: list[dict]) -> LibraryOptions:
        """Writer options. Symlink targets stay the server's own paths (the server follows the links) and must
        lie in one of its TV libraries (`folders`, not picks libraries); strm files hold the server's stream
        URLs, with the API key only when the user opted in."""
        require_strm_opt_in(self.mode, self.strm_api_key)
        key = self.media_server.api_key if self.mode == "strm" else None
        roots = sorted({loc for f in folders if str(f.get("CollectionType") or "").lower() == "tvshows"
                        and self.owner_of_library(f) is None for loc in map(str, f.get("Locations") or [])})
        return LibraryOptions(mode=self.mode, media_roots=tuple(roots),
                              stream_url=client.stream_url_template(key) if self.mode == "strm" else None)
