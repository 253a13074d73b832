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

import fcntl
import json
import os
import tempfile
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aperture_resources.library.cleanup import PLACEHOLDER_MARKER
from aperture_resources.library.naming import season_folder_name
from aperture_resources.media_server.base import IncompleteReadError, MediaServerClient, MediaServerError
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


# Placeholders: each one is confirmed by its path, never by a count. Right after a rescan a server still lists
# the previous scan's (already played) placeholders, so "as many as expected are listed" proves nothing.
PLACEHOLDER_POLL_SECONDS = 1.0  # between listings while a rescan may still be running
PLACEHOLDER_WAIT_SECONDS = 3.0  # at most this long per library and call; what is left waits for a later call


@dataclass(frozen=True)
class PlaceholderSync:
    marked: int  # mark-played requests sent
    confirmed: tuple[str, ...]  # pending paths the server now lists as played for the user
    pending: dict[str, float]  # still pending: server path -> since (epoch seconds)
    not_found: int  # of those, how many the server does not list at all yet (its scan has not reached them)
    waited: float  # seconds spent waiting for the server's scan


def _played(item: dict) -> bool:
    return bool((item.get("UserData") or {}).get("Played"))


def listed_placeholders(client: MediaServerClient, user_id: str, library_id: str) -> dict[str, list[dict]] | None:
    """The sorting placeholders the server lists in this library, by `Path`, with the user's played state; None
    while a scan changes the library under the read (a read that came out incomplete)."""
    try:
        items = client.user_items(user_id, "Episode", ["Path"], parentId=library_id, parentIndexNumber=0)
    except IncompleteReadError:
        return None
    by_path: dict[str, list[dict]] = {}
    for item in items:
        path = str(item.get("Path") or "")
        if path.endswith(PLACEHOLDER_SUFFIX) and item.get("Id"):
            by_path.setdefault(path, []).append(item)
    return by_path


def mark_placeholders(client: MediaServerClient, user_id: str, library_id: str, pending: Mapping[str, float],
                      polls: int = 1, poll_seconds: float = PLACEHOLDER_POLL_SECONDS,
                      budget_seconds: float = PLACEHOLDER_WAIT_SECONDS, sleep: Callable[[float], None] = time.sleep,
                      ) -> PlaceholderSync:
    """Mark the user's pending placeholders ({server path: since}) played and confirm each by a re-read.

    A placeholder leaves `pending` only when the server lists every item at its path as played for this user.
    One not listed yet (the rescan has not reached it) stays pending; so does one whose mark did not stick.
    `polls` > 1 (after a rescan) lists again every `poll_seconds`, at most `budget_seconds` in all; whatever is
    still pending is returned, for the `library_placeholders` sensor or the next run. Other placeholders the
    listing shows unplayed in this (the user's own) library are marked too, but not tracked."""
    left = dict(pending)
    confirmed: list[str] = []
    marked, waited, listed = 0, 0.0, None
    for attempt in range(max(1, polls)):
        listed = listed_placeholders(client, user_id, library_id)
        if listed is not None:
            unplayed = [item for items in listed.values() for item in items if not _played(item)]
            # one request per item (the APIs mark one at a time), sent side by side: the client bounds them in flight
            with ThreadPoolExecutor(max(1, min(getattr(client, "concurrency", 1), len(unplayed)))) as pool:
                list(pool.map(lambda item: client.mark_played(user_id, str(item["Id"])), unplayed))
            marked += len(unplayed)
            if unplayed:  # confirm by reading again, never by what was sent
                listed = listed_placeholders(client, user_id, library_id)
            for path, items in (listed or {}).items():
                if path in left and all(_played(item) for item in items):
                    del left[path]
                    confirmed.append(path)
        if not left or attempt + 1 >= polls or waited + poll_seconds > budget_seconds:
            break
        sleep(poll_seconds)
        waited += poll_seconds
    not_found = sum(1 for path in left if listed is None or path not in listed)
    return PlaceholderSync(marked, tuple(confirmed), left, not_found, waited)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive flock on the user's folder (the one the writer takes); best effort, as there."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class PendingPlaceholders:
    """One user's placeholders not yet confirmed played: {server path: since (epoch seconds)}, kept as JSON in
    PLACEHOLDER_MARKER beside their library folder, replaced atomically under a lock on the user's folder (runs
    and the sensor update it; each update re-reads it, so neither loses the other's entries). No pending
    placeholder, no file. An unreadable file, or the empty marker older versions wrote, counts as "every
    placeholder on disk pending since the file's time": more checking, never less."""

    tree: Path  # the user's library folder on disk
    server_path: str  # the same folder as the server sees it

    @property
    def file(self) -> Path:
        return self.tree.parent / PLACEHOLDER_MARKER

    def server_path_of(self, rel: PurePosixPath | str) -> str:
        return str(PurePosixPath(self.server_path) / rel)

    def on_disk(self) -> list[str]:
        """Server paths of every placeholder in the tree as it is now."""
        specials = season_folder_name(0)
        if not self.tree.is_dir():
            return []
        return sorted(self.server_path_of(PurePosixPath(series.name, specials, file.name))
                      for series in self.tree.iterdir() if series.is_dir() and not series.is_symlink()
                      and (series / specials).is_dir()
                      for file in (series / specials).iterdir() if file.name.endswith(PLACEHOLDER_SUFFIX))

    def load(self) -> dict[str, float]:
        try:
            raw = self.file.read_bytes()
            since = self.file.stat().st_mtime
        except FileNotFoundError:
            return {}
        try:
            pending = json.loads(raw)["pending"]
            if isinstance(pending, dict) and all(isinstance(v, int | float) for v in pending.values()):
                # a path outside the folder as the server sees it now (a moved root) can never be listed
                inside = self.server_path.rstrip("/") + "/"
                return {str(path): float(when) for path, when in pending.items() if str(path).startswith(inside)}
        except (ValueError, TypeError, KeyError):
            pass
        return dict.fromkeys(self.on_disk(), since)

    def update(self, add: Iterable[str] = (), remove: Iterable[str] = (), keep: Collection[str] | None = None,
               now: float | None = None) -> dict[str, float]:
        """Read, change and write back: drop what is not in `keep` (when given) and what is in `remove`, add
        `add` (an entry already pending keeps its time). Returns what is pending now."""
        if not self.tree.parent.is_dir():
            return {}
        with _folder_lock(self.tree.parent):
            pending = self.load()
            if keep is not None:
                keep = set(keep)
                pending = {path: since for path, since in pending.items() if path in keep}
            for path in remove:
                pending.pop(path, None)
            when = time.time() if now is None else now
            for path in add:
                pending.setdefault(path, when)
            self._save(pending)
        return pending

    def _save(self, pending: dict[str, float]) -> None:
        if not pending:
            self.file.unlink(missing_ok=True)
            return
        body = json.dumps({"version": 1, "pending": dict(sorted(pending.items()))}, indent=1).encode()
        fd, tmp = tempfile.mkstemp(prefix=f"{PLACEHOLDER_MARKER}.", suffix=".tmp", dir=self.file.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
            os.replace(tmp, self.file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def record_write(self, plan: Iterable[PurePosixPath], changed_folders: Collection[str]) -> dict[str, float]:
        """After a write: every placeholder of the plan in a series folder the write changed becomes pending;
        one no longer in the plan (its series left the picks) is dropped."""
        placeholders = [rel for rel in plan if rel.name.endswith(PLACEHOLDER_SUFFIX)]
        changed = set(changed_folders)
        return self.update(add=[self.server_path_of(rel) for rel in placeholders if rel.parts[0] in changed],
                           keep={self.server_path_of(rel) for rel in placeholders})


def oldest_age(pending: Mapping[str, float], now: float | None = None) -> float:
    """Seconds the longest-pending placeholder has waited (0 when none)."""
    return max(0.0, (time.time() if now is None else now) - min(pending.values())) if pending else 0.0
