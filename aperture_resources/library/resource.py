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

from aperture_resources.library.model import LibraryOptions
from aperture_resources.library.naming import safe_component
from aperture_resources.settings import ConfigError

DEFAULT_NAME = "{name}'s AI Picks - TV"
SERIES_DIR = "ai-series"
_OWNER = re.compile(r" \[([0-9a-z]{1,12})\]$")
_ON = {"on", "true", "1", "yes"}


def short_id(user_id: str) -> str:
    """The first 12 characters of a user id, normalised (GUIDs come with or without dashes)."""
    return re.sub(r"[^0-9a-z]", "", user_id.lower())[:12] or "user"


def owner_of(folder_name: str) -> str | None:
    """The short id a user folder name ends with, or None for anything that isn't one."""
    match = _OWNER.search(folder_name)
    return match.group(1) if match else None


class LibraryResource(ConfigurableResource):
    """APERTURE_LIBRARY_ROOT, APERTURE_MEDIA_SERVER_LIBRARY_ROOT, APERTURE_LIBRARY_MODE, APERTURE_LIBRARY_NAME and
    APERTURE_LIBRARY_STRM_API_KEY."""

    root: str = ""  # where aperture writes; default <data dir>/libraries
    server_root: str = ""  # the same folder as the media server sees it; default: root
    data_dir: str = ".aperture"
    mode: str = ""  # symlink | strm; empty = the mode that plays on the configured server
    name_template: str = DEFAULT_NAME
    strm_api_key: str = "off"

    def local_root(self) -> Path:
        return (Path(self.root) if self.root else Path(self.data_dir) / "libraries").absolute()

    def media_server_root(self) -> str:
        return (self.server_root or str(self.local_root())).rstrip("/") or "/"

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
        the library root (nobody's, so hidden from everyone); None outside the root."""
        path, root = PurePosixPath(location.rstrip("/") or "/"), PurePosixPath(self.media_server_root())
        if not path.is_relative_to(root):
            return None
        if path.parent.parent == root / "users" and path.name == SERIES_DIR:
            return owner_of(path.parent.name) or ""
        return ""

    def owner_of_library(self, folder: dict) -> str | None:
        """Short id of the user a server library (VirtualFolderInfo) belongs to; None if not a picks library."""
        owners = {self.owner_of_location(str(loc)) for loc in folder.get("Locations") or []} - {None}
        return min(owners) if owners else None

    def library_name(self, user_name: str) -> str:
        try:
            return self.name_template.format(name=user_name).strip()
        except (KeyError, IndexError, ValueError):
            raise ConfigError(f"APERTURE_LIBRARY_NAME may only use {{name}} (got {self.name_template!r}).") from None

    def resolved_mode(self, server_type: str) -> str:
        """symlink unless set: .strm files need a stream URL, and a URL the server plays needs its API key."""
        mode = self.mode.strip().lower() or "symlink"
        if mode not in ("symlink", "strm"):
            raise ConfigError(f"APERTURE_LIBRARY_MODE must be 'symlink' or 'strm' (got {self.mode!r}).")
        if mode == "strm" and not self.key_opt_in():
            raise ConfigError(
                f"APERTURE_LIBRARY_MODE=strm cannot play on {server_type.capitalize()} without the API key inside "
                "every .strm URL (local paths are ignored by Jellyfin 10.11.8+): set APERTURE_LIBRARY_STRM_API_KEY=on "
                "to accept that secret on disk, or use APERTURE_LIBRARY_MODE=symlink."
            )
        return mode

    def key_opt_in(self) -> bool:
        return self.strm_api_key.strip().lower() in _ON

    def options(self, server_type: str, server_url: str, api_key: str) -> LibraryOptions:
        """Writer options. Symlink targets stay the server's own paths (the server follows the links)."""
        kind = server_type.strip().lower()
        mode = self.resolved_mode(kind)
        key = api_key if mode == "strm" and self.key_opt_in() else None
        return LibraryOptions(mode=mode, server_type=kind, server_url=server_url, api_key_in_urls=key)
