"""The media-server side of the picks libraries: keep every one private to its user, find or create each one
once, and mark the sorting placeholders played for their user. Everything here fails closed.

Why each rule:
- Privacy comes first. A user with EnableAllFolders=true sees every library, other users' picks included,
  so before any picks library is created or scanned every such user gets an explicit list: every library that
  is not a picks library (plus their own). If that fails for anyone, nothing is created or scanned in that run.
  Who had "all libraries" is recorded, so libraries the admin adds later are added to those users' lists and
  they keep seeing everything they did. Policies are read-modify-written whole: a partial body resets the
  fields it leaves out. Which id a policy's EnabledFolders holds differs by server: the client's
  `permission_id` says.
- Creating a library is not idempotent (a taken name becomes "Name2"), so a library is looked up by the id
  aperture recorded when it made it, then by path, before anything is created. A listing that holds none of
  the recorded libraries is a bad read, not news: nothing is created.
- Library names are unique whatever their case and Unicode form: a user whose library name clashes with
  another library gets their short id appended, so two users called "alice" and "ALICE" get two libraries.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aperture_resources.media_server.base import MediaServerClient, MediaServerError
from aperture_resources.settings import ConfigError

PLACEHOLDER_SUFFIX = "-placeholder.strm"


class PrivacyError(MediaServerError):
    """A user's library access could not be restricted; nothing new is made visible in this run."""


def norm_id(value: object) -> str:
    return str(value).replace("-", "").lower()


def name_key(name: str) -> str:
    """How the server compares library names, and stricter: case and Unicode form ignored."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


def _locations(folder: dict) -> list[str]:
    return [str(loc).rstrip("/") for loc in folder.get("Locations") or []]


def at_path(folders: Iterable[dict], path: str) -> dict | None:
    return next((f for f in folders if path.rstrip("/") in _locations(f)), None)


def unique_names(wanted: dict[str, tuple[str, str]], folders: list[dict], suffix: Callable[[str], str]
                 ) -> dict[str, tuple[str, str]]:
    """{key: (name, path)} with every name unique among the server's libraries and each other. A library that
    already exists at its path keeps its name; a clash gets ` (<suffix(key)>)` appended."""
    existing = {key: at_path(folders, path) for key, (_, path) in wanted.items()}
    taken = {name_key(str(f.get("Name", ""))) for f in folders}
    chosen: dict[str, tuple[str, str]] = {}
    for key in sorted(wanted, key=lambda k: (existing[k] is None, k)):  # existing libraries keep their names
        name, path = wanted[key]
        if existing[key] is not None:
            name = str(existing[key].get("Name", name))
        elif name_key(name) in taken:
            name = f"{name} ({suffix(key)})"
        taken.add(name_key(name))
        chosen[key] = (name, path)
    return chosen


def stale_libraries(folders: list[dict], wanted: dict[str, tuple[str, str]], recorded: dict[str, str],
                    suffix: Callable[[str], str]) -> dict[str, dict]:
    """{key: library} of each user's picks library that no longer matches what is wanted ({key: (name, server
    path)}, names before `unique_names`): the one aperture recorded (`recorded`: {key: library id}) at another
    path (APERTURE_LIBRARY_ROOT changed), or the one at the wanted path under another name (APERTURE_LIBRARY_NAME
    changed). Removing them first moves each user to one new library, never two."""
    by_id = {norm_id(f.get("ItemId")): f for f in folders}
    stale: dict[str, dict] = {}
    for key, (name, path) in wanted.items():
        names = {name_key(name), name_key(f"{name} ({suffix(key)})")}
        known = by_id.get(norm_id(recorded[key])) if key in recorded else None
        if known is not None and path.rstrip("/") not in _locations(known):
            stale[key] = known
        here = at_path(folders, path)
        if here is not None and name_key(str(here.get("Name", ""))) not in names:
            stale[key] = here
    return stale


def check_listing(client: MediaServerClient, folders: list[dict], recorded_ids: Collection[str]) -> None:
    """Refuse a library listing that cannot be the whole truth: empty, or without any of the picks libraries
    aperture made (a server that lost them all at once is far likelier to have answered short)."""
    if not folders:
        raise MediaServerError(f"{client.kind} server listed no libraries at all; nothing was created or changed.")
    listed = {norm_id(f.get("ItemId")) for f in folders}
    if recorded_ids and not listed & {norm_id(i) for i in recorded_ids}:
        raise MediaServerError(
            f"{client.kind} server listed {len(folders)} libraries but none of the {len(recorded_ids)} picks "
            "libraries aperture made; treating the list as a bad read, nothing was created or changed. If they "
            "were really removed (a rebuilt server), run `aperture db forget-libraries`.")


def ensure_libraries(client: MediaServerClient, folders: list[dict], wanted: dict[str, tuple[str, str]],
                     recorded: dict[str, str]) -> tuple[list[dict], dict[str, dict], set[str]]:
    """Find or create each wanted library ({key: (name, server path)}; `recorded`: {key: library id aperture
    made before}). Returns (all folders, {key: folder}, keys created this run); the list is read again only if
    something was created."""
    by_id = {norm_id(f.get("ItemId")): f for f in folders}

    def find(key: str, listing: list[dict]) -> dict | None:
        known = by_id.get(norm_id(recorded[key])) if key in recorded else None
        return known if known is not None else at_path(listing, wanted[key][1])

    missing = [key for key in wanted if find(key, folders) is None]
    for key in missing:  # one at a time: each create makes the server re-validate its root folder
        client.create_library(*wanted[key])
    if missing:
        folders = client.libraries()
    found = {key: find(key, folders) for key in wanted}
    lost = [wanted[key][1] for key, folder in found.items() if folder is None]
    if lost:
        raise MediaServerError(f"{client.kind} server did not create a library at {lost}; does it see that path?")
    return folders, {key: folder for key, folder in found.items() if folder is not None}, set(missing)


def private_policy(policy: dict, folders: list[dict], permission_id: Callable[[dict], str], picks: set[str],
                   own: set[str], see_all: bool = False) -> dict | None:
    """`policy` changed so that its user sees no picks library but their own; None if it already is so.

    permission_id: the server's id of a library in policies; picks / own: normalised permission ids of every
    picks library / of this user's; see_all: the user could see every library before aperture changed that,
    so every library that is not a picks library belongs in their list."""
    others = picks - own
    everything = [permission_id(f) for f in folders if norm_id(permission_id(f)) not in others]
    if policy.get("EnableAllFolders", True) is not False:  # even before any picks library exists: it will
        return {**policy, "EnableAllFolders": False, "EnabledFolders": everything}
    current = [str(x) for x in policy.get("EnabledFolders") or []]
    kept = [x for x in current if norm_id(x) not in others]
    have = {norm_id(x) for x in kept}
    wanted = [x for x in everything if see_all or norm_id(x) in own]
    added = [x for x in wanted if norm_id(x) not in have]
    if kept == current and not added:
        return None
    return {**policy, "EnabledFolders": kept + added}


@dataclass(frozen=True)
class PolicyOutcome:
    updated: list[str]  # user ids whose policy was changed
    had_all_folders: dict[str, bool]  # EnableAllFolders as found, for every user looked at
    failures: list[str]  # one sentence per user whose update was refused

    def raise_if_failed(self) -> None:
        if self.failures:
            raise PrivacyError(" ".join(self.failures))


def enforce_privacy(client: MediaServerClient, users: list[dict], folders: list[dict],
                    owner_of_folder: Callable[[dict], str | None], short_id: Callable[[str], str],
                    see_all: Collection[str] = ()) -> PolicyOutcome:
    """Apply `private_policy` to every user: one GET (fresh policy) and one POST per user that needs it, a few
    users at a time. One user's refusal never stops the others; every refusal is reported."""
    picks = {norm_id(client.permission_id(f)): owner_of_folder(f) for f in folders}
    picks = {pid: owner for pid, owner in picks.items() if owner is not None}

    def own(user: dict) -> set[str]:
        return {pid for pid, owner in picks.items() if owner == short_id(str(user["Id"]))}

    def wanted(user: dict, policy: dict) -> dict | None:
        return private_policy(policy, folders, client.permission_id, set(picks), own(user),
                              str(user["Id"]) in see_all)

    def update(user: dict) -> tuple[bool, bool, str | None]:
        try:
            fresh = client.user(str(user["Id"])).get("Policy") or {}
            policy = wanted(user, fresh)
            if policy is not None:
                client.set_user_policy(str(user["Id"]), policy)
            return policy is not None, fresh.get("EnableAllFolders", True) is not False, None
        except (MediaServerError, ConfigError) as exc:
            return False, False, (f"PRIVACY: could not restrict the libraries of user {user.get('Name')!r} "
                                  f"({user['Id']}), so no picks library was made visible in this run: {exc}")

    users = [u for u in users if u.get("Id")]
    stale = [u for u in users if wanted(u, u.get("Policy") or {}) is not None]
    with ThreadPoolExecutor(client.concurrency) as pool:
        results = dict(zip((str(u["Id"]) for u in stale), pool.map(update, stale), strict=True))
    found = {str(u["Id"]): (u.get("Policy") or {}).get("EnableAllFolders", True) is not False for u in users}
    found |= {uid: all_folders for uid, (_, all_folders, failure) in results.items() if failure is None}
    return PolicyOutcome([uid for uid, (done, _, _) in results.items() if done], found,
                         [failure for _, _, failure in results.values() if failure])


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
