"""Remove the picks library of a user who was disabled, deleted or left out by APERTURE_USERS: the server
library first (so the server never scans a vanishing folder), then the folder on disk.

`remove_user_library` handles one user (the asset calls it for a partition whose user is no longer
enabled); `prune_user_libraries` removes every picks library whose owner is not in the enabled set, for a
sensor or a clean-up step.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from aperture_resources.library.resource import LibraryResource, owner_of, short_id
from aperture_resources.library.writer import remove_user_tree
from aperture_resources.media_server.base import MediaServerClient

REFRESH_MARKER = ".refresh-pending"  # beside the user's library folder: files changed, rescan not done yet
PLACEHOLDER_MARKER = ".placeholders-pending"  # rescanned, placeholders not all marked played yet


@dataclass
class Removal:
    libraries: list[str] = field(default_factory=list)  # server libraries deleted, by name
    folders: list[str] = field(default_factory=list)  # user folders deleted
    entries: int = 0  # files, links and folders deleted inside them


def _remove(client: MediaServerClient, library: LibraryResource, owners: set[str], folders: list[dict]) -> Removal:
    removal = Removal()
    for folder in folders:
        if library.owner_of_library(folder) in owners:
            client.delete_library(folder)
            removal.libraries.append(str(folder.get("Name")))
    users_dir = library.users_dir()
    for user_dir in sorted(users_dir.iterdir()) if users_dir.is_dir() else []:
        if user_dir.is_dir() and not user_dir.is_symlink() and owner_of(user_dir.name) in owners:
            removal.entries += remove_user_tree(library.local_path(user_dir.name), library.local_root())
            shutil.rmtree(user_dir)  # only the (now empty) user folder and stray files aperture put there
            removal.folders.append(user_dir.name)
    return removal


def remove_user_library(client: MediaServerClient, library: LibraryResource, user_id: str,
                        folders: list[dict] | None = None) -> Removal:
    """Delete one user's picks library on the server and their folder on disk (no-op if neither exists)."""
    return _remove(client, library, {short_id(user_id)}, client.libraries() if folders is None else folders)


def prune_user_libraries(client: MediaServerClient, library: LibraryResource, enabled_user_ids: list[str]) -> Removal:
    """Delete every picks library and user folder whose owner is not an enabled user."""
    keep = {short_id(u) for u in enabled_user_ids}
    folders = client.libraries()
    owners = {library.owner_of_library(f) for f in folders} - {None}
    users_dir = library.users_dir()
    if users_dir.is_dir():
        owners |= {owner_of(p.name) for p in users_dir.iterdir() if p.is_dir()} - {None}
    return _remove(client, library, owners - keep - {""}, folders)  # "": under the root but nobody's
