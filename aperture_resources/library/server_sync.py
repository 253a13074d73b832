"""The media-server side of the picks libraries: find or create each one once, keep every one private to
its user, and mark the sorting placeholders played for their user.

Why each rule:
- Creating a library is not idempotent (a taken name becomes "Name2"), so a library is looked up by path
  and by name before anything is created, and read back by path afterwards.
- A user with EnableAllFolders=true sees every library, other users' picks included. Switching it off
  alone would hide all their real libraries, so it becomes an explicit list: every library that is not a
  picks library, plus the user's own picks library. Users with an explicit list only lose other users'
  picks libraries (and gain their own). Policies are read-modify-written whole: a partial body resets
  the fields it leaves out.
- Which id a policy's EnabledFolders holds differs by server: the client's `permission_id` says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aperture_resources.media_server.base import MediaServerClient, MediaServerError
from aperture_resources.settings import ConfigError

PLACEHOLDER_SUFFIX = "-placeholder.strm"


def norm_id(value: object) -> str:
    return str(value).replace("-", "").lower()


def _locations(folder: dict) -> list[str]:
    return [str(loc).rstrip("/") for loc in folder.get("Locations") or []]


def find_library(folders: Iterable[dict], name: str, path: str) -> dict | None:
    """The library at `path` (whatever it is called now), else the one named `name` if it points there too.

    A library with our name but other locations is someone else's: refuse rather than show its content or
    create "Name2"."""
    folders = list(folders)
    at_path = next((f for f in folders if path.rstrip("/") in _locations(f)), None)
    if at_path is not None:
        return at_path
    named = next((f for f in folders if str(f.get("Name", "")).casefold() == name.casefold()), None)
    if named is not None:
        raise ConfigError(f"The media server already has a library named {name!r} at {_locations(named)}, not at "
                          f"{path}: rename that library or change APERTURE_LIBRARY_NAME.")
    return None


def ensure_libraries(client: MediaServerClient, wanted: dict[str, tuple[str, str]]) -> tuple[list[dict], dict, set]:
    """Find or create each wanted library ({key: (name, server path)}).

    Returns (all folders, {key: folder}, keys created this run); the folder list is read once, and once
    more only if something was created."""
    folders = client.libraries()
    missing = [key for key, (name, path) in wanted.items() if find_library(folders, name, path) is None]
    for key in missing:  # one at a time: each create makes the server re-validate its root folder
        client.create_library(*wanted[key])
    if missing:
        folders = client.libraries()
    found = {key: find_library(folders, name, path) for key, (name, path) in wanted.items()}
    lost = [wanted[key][1] for key, folder in found.items() if folder is None]
    if lost:
        raise MediaServerError(f"{client.kind} server did not create a library at {lost}; does it see that path?")
    return folders, found, set(missing)


def private_policy(policy: dict, folders: list[dict], permission_id: Callable[[dict], str], picks: set[str],
                   own: set[str]) -> dict | None:
    """`policy` changed so that its user sees no picks library but their own; None if it already is so.

    permission_id: the server's id of a library in policies; picks / own: normalised permission ids of every
    picks library / of this user's."""
    others = picks - own
    if policy.get("EnableAllFolders", True) is not False:
        if not others:
            return None
        enabled = [permission_id(f) for f in folders if norm_id(permission_id(f)) not in others]
        return {**policy, "EnableAllFolders": False, "EnabledFolders": enabled}
    current = [str(x) for x in policy.get("EnabledFolders") or []]
    kept = [x for x in current if norm_id(x) not in others]
    have = {norm_id(x) for x in kept}
    own_ids = [permission_id(f) for f in folders if norm_id(permission_id(f)) in own]
    added = [x for x in own_ids if norm_id(x) not in have]
    if kept == current and not added:
        return None
    return {**policy, "EnabledFolders": kept + added}


@dataclass(frozen=True)
class PolicyOutcome:
    updated: list[str]  # user ids whose policy was changed
    warnings: list[str]  # one sentence per refused update


def enforce_privacy(client: MediaServerClient, users: list[dict], folders: list[dict],
                    owner_of_folder: Callable[[dict], str | None], short_id: Callable[[str], str]) -> PolicyOutcome:
    """Apply `private_policy` to every user: one GET (fresh policy) and one POST per user that needs it, a few
    users at a time. A refused update is a warning, not a crash: the other users' privacy still gets enforced."""
    picks = {norm_id(client.permission_id(f)): owner_of_folder(f) for f in folders}
    picks = {pid: owner for pid, owner in picks.items() if owner is not None}

    def own(user: dict) -> set[str]:
        return {pid for pid, owner in picks.items() if owner == short_id(str(user["Id"]))}

    def update(user: dict) -> tuple[bool, str | None]:
        try:
            fresh = client.user(str(user["Id"])).get("Policy") or {}
            policy = private_policy(fresh, folders, client.permission_id, set(picks), own(user))
            if policy is not None:
                client.set_user_policy(str(user["Id"]), policy)
            return policy is not None, None
        except (MediaServerError, ConfigError) as exc:
            return False, (f"PRIVACY: could not restrict the libraries of user {user.get('Name')!r} ({user['Id']}); "
                           f"they may see other users' picks libraries: {exc}")

    stale = [u for u in users if u.get("Id")
             and private_policy(u.get("Policy") or {}, folders, client.permission_id, set(picks), own(u)) is not None]
    with ThreadPoolExecutor(client.concurrency) as pool:
        results = list(pool.map(update, stale))
    return PolicyOutcome([str(u["Id"]) for u, (done, _) in zip(stale, results, strict=True) if done],
                         [warning for _, warning in results if warning])


def mark_placeholders(client: MediaServerClient, user_id: str, library_id: str, expected: int, tries: int = 1,
                      wait_seconds: float = 2.0) -> tuple[int, int]:
    """Mark the user's sorting placeholders in this library played; returns (marked, not yet found).

    Real servers scan asynchronously after a refresh, so `tries` > 1 polls a few times; anything still
    missing is reported and marked by the next run (each run looks for unplayed placeholders)."""
    found: list[dict] = []
    for attempt in range(max(1, tries)):
        items = client.user_items(user_id, "Episode", ["Path"], parentId=library_id, parentIndexNumber=0)
        found = [i for i in items if str(i.get("Path") or "").endswith(PLACEHOLDER_SUFFIX)]
        if len(found) >= expected or attempt == tries - 1:
            break
        time.sleep(wait_seconds)
    unplayed = [i for i in found if not (i.get("UserData") or {}).get("Played")]
    for item in unplayed:
        client.mark_played(user_id, str(item["Id"]))
    return len(unplayed), max(0, expected - len(found))
