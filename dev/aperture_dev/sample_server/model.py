"""The sample server's in-memory library: items shaped like Jellyfin/Emby BaseItemDto, users and
per-user user data, built once from a library description (see DATA_SCHEMA.md) and mutable by tests."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

TICKS_PER_SECOND = 10_000_000
SERVER_ID = "5a3f0c7e9b2d4e61a8c7f1e2d3b4a596"
# Properties the real servers return only when named in `fields=`.
OPTIONAL_FIELDS = {
    "providerids": "ProviderIds", "genres": "Genres", "studios": "Studios", "tags": "Tags",
    "overview": "Overview", "path": "Path", "datecreated": "DateCreated", "sortname": "SortName",
    "originaltitle": "OriginalTitle", "childcount": "ChildCount", "recursiveitemcount": "RecursiveItemCount",
}
# The parental rating scale `GET /Localization/ParentalRatings` serves (US TV and film ratings, Jellyfin's values;
# both flavours use it). A rating name not on the scale counts as unrated, as on the real servers.
PARENTAL_RATINGS = (
    ("TV-Y", 0), ("TV-G", 0), ("G", 0), ("TV-Y7", 7), ("PG", 10), ("TV-PG", 10), ("PG-13", 13), ("TV-14", 14),
    ("R", 17), ("TV-MA", 17), ("NC-17", 18),
)
RATING_VALUES = {name.casefold(): value for name, value in PARENTAL_RATINGS}
# Emby 4.9 dropped UserPolicy.BlockedMediaFolders (Jellyfin and Emby 4.8 have it).
EMBY_WITHOUT_BLOCKED_FOLDERS = (4, 9)
# The flavours the sample server imitates: mode -> the versions whose OpenAPI specs the contract tests hold,
# newest last. `SampleServer(data, mode, version=...)` takes any of these, a shorthand of one ("12", "4.9") or
# any other dotted version (behaviour follows the version number); no version = the mode's default.
VERSIONS = {
    "jellyfin": ("10.10.7", "10.11.11", "12.0.0"),
    "emby": ("4.8.11.0", "4.9.0.41"),
}
DEFAULT_VERSIONS = {"jellyfin": "10.11.11", "emby": "4.8.11.0"}
# Series properties Emby sends only when `Fields` names them (Jellyfin always sends them when set).
EMBY_ASKED_SERIES_FIELDS = {
    "productionyear": "ProductionYear", "premieredate": "PremiereDate", "enddate": "EndDate", "status": "Status",
    "officialrating": "OfficialRating", "communityrating": "CommunityRating",
}
# Jellyfin 12's rule for a new library's name (the `pattern` of `name` in its spec): no whitespace at either end.
JELLYFIN12_LIBRARY_NAME = re.compile(r"\S(?:.*\S)?")


def version_tuple(version: str | None) -> tuple[int, ...]:
    """"4.9.0.41" -> (4, 9, 0, 41); unparsable parts end the tuple."""
    parts = []
    for part in (version or "").split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def resolve_flavour(mode: str, version: str | None = None) -> tuple[str, str]:
    """(mode, full version) for a flavour: "12" -> "12.0.0", "4.9" -> "4.9.0.41", None -> the mode's default;
    any other version is kept as given. Raises ValueError for an unknown mode."""
    if mode not in VERSIONS:
        raise ValueError(f"unknown sample server mode {mode!r} (one of {', '.join(VERSIONS)})")
    if not version:
        return mode, DEFAULT_VERSIONS[mode]
    wanted = version_tuple(version)
    if not wanted:
        raise ValueError(f"unparsable {mode} version {version!r}")
    known = [v for v in VERSIONS[mode] if version_tuple(v)[:len(wanted)] == wanted]
    return mode, known[-1] if known else version


def rating_value(rating: str | None) -> int | None:
    """An OfficialRating's value on the scale; None = unrated (no rating, or one the scale does not know)."""
    return RATING_VALUES.get(rating.strip().casefold()) if isinstance(rating, str) else None


def wire_date(value: datetime | date) -> str:
    """Dates as the servers write them: 2024-05-01T20:13:44.0000000Z."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def safe_component(text: str) -> str:
    return re.sub(r'[<>:"/\\|?*\x00-\x1f]', "_", text).strip(" .") or "_"


def sort_name(name: str) -> str:
    lowered = name.casefold()
    for article in ("the ", "a ", "an "):
        if lowered.startswith(article):
            return lowered[len(article):]
    return lowered


@dataclass(slots=True)
class Item:
    """One Series, Season or Episode copy in one library (slotted: a 10x library holds a million)."""

    id: str
    type: str
    library_id: str
    series_id: str | None
    season_id: str | None
    sort_key: str
    base: dict
    extra: dict
    premiere: str = ""

    def dto(self, fields: set[str]) -> dict:
        out = dict(self.base)
        for lowered, name in OPTIONAL_FIELDS.items():
            if lowered in fields and name in self.extra:
                out[name] = self.extra[name]
        return out


@dataclass(slots=True)
class UserData:
    played: bool = False
    play_count: int = 0
    last_played: datetime | None = None
    position_ticks: int = 0
    favorite: bool = False
    likes: bool | None = None  # Jellyfin/Emby "Likes": True = liked, False = disliked, None = neither


EMPTY = UserData()


@dataclass
class User:
    id: str
    name: str
    policy: dict
    last_activity: datetime


@dataclass
class LibraryState:
    """Everything the server holds; guarded by one lock because tests mutate it while requests run."""

    mode: str
    version: str = ""  # the server version the flavour imitates (some policy fields depend on it)
    items: dict[str, Item] = field(default_factory=dict)
    removed: dict[str, list[Item]] = field(default_factory=dict)
    folders: list[dict] = field(default_factory=list)
    users: dict[str, User] = field(default_factory=dict)
    user_data: dict[tuple[str, str], UserData] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    generation: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))
    _cache: dict = field(default_factory=dict)
    _by_library: dict[str, dict[str, Item]] | None = None
    # When items last changed, anywhere or in one library. `minDateLastSaved` compares these, not a per-item
    # date: after a change every item (of that library) counts as saved again, a coarse but never-missing
    # stand-in for the real servers' DateLastSaved.
    items_saved_at: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    library_saved_at: dict[str, datetime] = field(default_factory=dict)

    def bump(self, items: bool = True, library_id: str | None = None) -> None:
        """Invalidate cached query results after any change (and the library index unless only user data
        changed: marking 600 placeholders played must not re-index 130,000 items each time). A change confined
        to one library names it."""
        self.generation += 1
        self._cache.clear()
        if items:
            self._by_library = None
            if library_id:
                self.library_saved_at[library_id] = datetime.now(UTC)
            else:
                self.items_saved_at = datetime.now(UTC)

    def saved_at(self, item: Item) -> datetime:
        """When the item last counted as saved (see items_saved_at)."""
        return max(self.items_saved_at, self.library_saved_at.get(item.library_id, self.items_saved_at))

    def library_items(self, library_id: str) -> dict[str, Item]:
        """The library's items by id, from an index kept until the items change (a real server has one)."""
        if self._by_library is None:
            index: dict[str, dict[str, Item]] = {}
            for item in self.items.values():
                index.setdefault(item.library_id, {})[item.id] = item
            self._by_library = index
        return self._by_library.get(library_id, {})

    # -- ids ----------------------------------------------------------------------------------
    def new_id(self, key: str) -> str:
        if self.mode == "emby":
            return str(next(self._ids))
        return hashlib.md5(key.encode()).hexdigest()

    # -- reads --------------------------------------------------------------------------------
    def users_json(self) -> list[dict]:
        with self.lock:
            return [user_dto(u, self.mode) for u in self.users.values()]

    # -- what the flavour (mode and version) does ------------------------------------------------
    @property
    def has_blocked_folders(self) -> bool:
        """Whether this server's UserPolicy has BlockedMediaFolders (all but Emby 4.9+)."""
        return self.mode != "emby" or not version_tuple(self.version) >= EMBY_WITHOUT_BLOCKED_FOLDERS

    @property
    def legacy_auth(self) -> bool:
        """Whether `X-Emby-Token`, `X-MediaBrowser-Token`, `X-Emby-Authorization` and `api_key` are accepted:
        on Emby and on Jellyfin up to 10.11 (Jellyfin 12 turns legacy authorization off by default)."""
        return self.mode == "emby" or version_tuple(self.version) < (12,)

    @property
    def strict_library_names(self) -> bool:
        """Jellyfin 12 refuses a new library whose name starts or ends with whitespace."""
        return self.mode == "jellyfin" and version_tuple(self.version) >= (12,)

    @property
    def has_user_items_path(self) -> bool:
        """`GET /Users/{id}/Items`: Emby's user read; on Jellyfin a legacy route gone from 10.11 on."""
        return self.mode == "emby" or version_tuple(self.version) < (10, 11)

    @property
    def has_special_season_filter(self) -> bool:
        """Emby 4.9's `/Items` filter `IsSpecialSeason` (other versions ignore the unknown parameter)."""
        return self.mode == "emby" and version_tuple(self.version) >= (4, 9)

    def data_for(self, user_id: str, item_id: str) -> UserData:
        return self.user_data.get((user_id, item_id)) or EMPTY

    def user_data_dto(self, user_id: str, item: Item) -> dict:
        data = self.data_for(user_id, item.id)
        dto = {
            "PlaybackPositionTicks": data.position_ticks,
            "PlayCount": data.play_count,
            "IsFavorite": data.favorite,
            "Played": data.played,
            "Key": item.id,
            "ItemId": item.id,
        }
        if data.last_played:
            dto["LastPlayedDate"] = wire_date(data.last_played)
        if data.likes is not None:
            dto["Likes"] = data.likes
        runtime = item.base.get("RunTimeTicks")
        if data.position_ticks and runtime:
            dto["PlayedPercentage"] = round(100.0 * data.position_ticks / runtime, 2)
        return dto

    def _folder_ids(self, values: object) -> set[str]:
        """Library item ids named in a policy list (Jellyfin names ItemIds, Emby Guids; dashes optional)."""
        named = {str(x).replace("-", "").lower() for x in values or [] if isinstance(x, str | int)}
        return {f["ItemId"] for f in self.folders
                if f["ItemId"].lower() in named or str(f.get("Guid", "")).replace("-", "").lower() in named}

    def visible_libraries(self, user_id: str) -> set[str]:
        """Library item ids the user may see: all, or those named in the policy (Emby names Guids), less any
        BlockedMediaFolders (where the server version has that field)."""
        policy = self.users[user_id].policy
        if policy.get("EnableAllFolders", True):
            visible = {f["ItemId"] for f in self.folders}
        else:
            visible = self._folder_ids(policy.get("EnabledFolders"))
        if self.has_blocked_folders:
            visible -= self._folder_ids(policy.get("BlockedMediaFolders"))
        return visible

    def refused_series(self, user_id: str) -> frozenset[str]:
        """Series ids (in the user's libraries) the user's parental controls hide, with their seasons and
        episodes: excluded sub-folders (Emby), MaxParentalRating, BlockUnratedItems containing "Series", blocked
        tags, and allowed tags (Jellyfin AllowedTags; Emby IncludeTags in inclusive mode, where AllowTagOrRating
        lets an allowed tag override the rating). Episodes inherit their series' rating and tags, as on the real
        servers. Cached until the next change or policy edit."""
        key = ("refused", user_id, self._policy_key(user_id))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        policy = self.users[user_id].policy
        max_rating = policy.get("MaxParentalRating")
        max_rating = max_rating if isinstance(max_rating, int) and not isinstance(max_rating, bool) else None
        block_unrated = "series" in _folded(policy.get("BlockUnratedItems"))
        blocked = _folded(policy.get("BlockedTags"))
        inclusive = self.mode == "emby" and policy.get("IsTagBlockingModeInclusive") is True
        if self.mode == "emby":
            allowed = _folded(policy.get("IncludeTags")) if inclusive else set()
        else:
            allowed = _folded(policy.get("AllowedTags"))
        tag_or_rating = inclusive and policy.get("AllowTagOrRating") is True
        excluded = self._excluded_locations(policy) if self.mode == "emby" else set()
        if max_rating is None and not (block_unrated or blocked or allowed or excluded):
            cached = self._cache[key] = frozenset()
            return cached
        refused = set()
        for library_id in self.visible_libraries(user_id):
            for item in self.library_items(library_id).values():
                if item.type != "Series":
                    continue
                path = str(item.extra.get("Path") or "")
                if any(lib == library_id and (path == loc or path.startswith(loc.rstrip("/") + "/"))
                       for lib, loc in excluded):
                    refused.add(item.id)
                    continue
                tags = {str(t).strip().casefold() for t in item.extra.get("Tags") or []}
                tag_allowed = bool(tags & allowed)
                value = rating_value(item.base.get("OfficialRating"))
                rating_ok = not ((value is None and block_unrated)
                                 or (value is not None and max_rating is not None and value > max_rating))
                # Emby's AllowTagOrRating: an allowed tag OR an allowed rating lets the series through
                passes = (rating_ok or tag_allowed) if tag_or_rating else (rating_ok and (tag_allowed or not allowed))
                if tags & blocked or not passes:
                    refused.add(item.id)
        cached = self._cache[key] = frozenset(refused)
        return cached

    def _excluded_locations(self, policy: dict) -> set[tuple[str, str]]:
        """Emby ExcludedSubFolders as (library item id, path): entries are "<library Guid>_<path>"."""
        by_guid = {str(f.get("Guid", "")).replace("-", "").lower(): f["ItemId"] for f in self.folders}
        out = set()
        for entry in policy.get("ExcludedSubFolders") or []:
            guid, _, path = str(entry).partition("_")
            library_id = by_guid.get(guid.replace("-", "").lower())
            if library_id and path:
                out.add((library_id, path))
        return out

    def _policy_key(self, user_id: str | None) -> str:
        """The user's policy as a cache key part (tests edit policies in place, without a bump)."""
        user = self.users.get(user_id) if user_id else None
        return json.dumps(user.policy, sort_keys=True, default=str) if user else ""

    def query(self, flt, user_id: str | None) -> list[Item]:
        """Items matching an ItemFilter, in its sort order; cached until the next change."""
        key = (flt, user_id, self._policy_key(user_id))
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._run_query(flt, user_id)
        return cached

    def by_user(self, user_id: str) -> dict[str, UserData]:
        """The user's data by item id (one pass over all user data, cached until the next change)."""
        index = self._cache.get("by_user")
        if index is None:
            index = self._cache["by_user"] = {}
            for (uid, item_id), data in self.user_data.items():
                index.setdefault(uid, {})[item_id] = data
        return index.get(user_id, {})

    def _run_query(self, flt, user_id: str | None) -> list[Item]:
        if flt.ids:
            found = [self.items[i] for i in dict.fromkeys(flt.ids) if i in self.items]
        elif user_id and (flt.is_played or flt.is_favorite or flt.needs_user_data):
            # only items the user has data for can match
            found = [self.items[i] for i in self.by_user(user_id) if i in self.items]
        elif flt.parent_id and self._normal_id(flt.parent_id) in {f["ItemId"] for f in self.folders}:
            found = list(self.library_items(self._normal_id(flt.parent_id)).values())
        else:
            found = list(self.items.values())
        if user_id:
            visible, refused = self.visible_libraries(user_id), self.refused_series(user_id)
            found = [i for i in found if i.library_id in visible
                     and (i.id if i.type == "Series" else i.series_id) not in refused]
        if flt.parent_id:
            parent = self._normal_id(flt.parent_id)
            if flt.recursive:
                found = [i for i in found if parent in (i.library_id, i.series_id, i.season_id) and i.id != parent]
            else:
                found = [i for i in found if i.id != parent and (
                    (i.type == "Series" and i.library_id == parent)
                    or (i.type == "Season" and i.series_id == parent)
                    or (i.type == "Episode" and i.season_id == parent))]
        if flt.types:
            found = [i for i in found if i.type.lower() in flt.types]
        if flt.parent_index is not None:
            found = [i for i in found if i.base.get("ParentIndexNumber") == flt.parent_index]
        if flt.special_season is not None and self.has_special_season_filter:
            found = [i for i in found if (i.type == "Season" and i.base.get("IndexNumber") == 0)
                     == flt.special_season]
        if flt.min_saved is not None:
            found = [i for i in found if self.saved_at(i) >= flt.min_saved]
        if flt.exclude_virtual:
            found = [i for i in found if i.base.get("LocationType") != "Virtual"]
        if user_id and flt.is_played is not None:
            found = [i for i in found if self.data_for(user_id, i.id).played == flt.is_played]
        if user_id and flt.is_favorite is not None:
            found = [i for i in found if self.data_for(user_id, i.id).favorite == flt.is_favorite]
        for name in flt.filters:  # Jellyfin `filters` / Emby `Filters` (ItemFilter names)
            test = _ITEM_FILTERS.get(name)
            if test and (user_id or name in ("isfolder", "isnotfolder")):
                found = [i for i in found if test(i, self.data_for(user_id, i.id) if user_id else EMPTY)]
        if "dateplayed" in flt.sort_by and user_id:
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            found.sort(key=lambda i: (self.data_for(user_id, i.id).last_played or epoch, i.id),
                       reverse=flt.descending)
        elif "datecreated" in flt.sort_by:
            found.sort(key=lambda i: (i.extra.get("DateCreated", ""), i.id), reverse=flt.descending)
        elif not flt.ids:
            found.sort(key=lambda i: (i.sort_key, i.id), reverse=flt.descending)
        return found

    def replace_library_items(self, library_id: str, found: dict[str, Item]) -> None:
        """A rescan's result: the library now holds exactly `found` (the index is updated, not rebuilt)."""
        for item_id in self.library_items(library_id).keys() - found.keys():
            del self.items[item_id]
        self.items.update(found)
        self.bump(items=False)
        self.library_saved_at[library_id] = datetime.now(UTC)
        if self._by_library is not None:
            self._by_library[library_id] = dict(found)

    def _normal_id(self, item_id: str) -> str:
        return item_id.replace("-", "").lower() if self.mode == "jellyfin" else item_id

    def resume(self, user_id: str, types: set[str]) -> list[Item]:
        """In-progress items (a playback position, not played), most recent first."""
        out = []
        # the policy once per call, not per item: each picks library adds a folder to look through
        visible, refused = self.visible_libraries(user_id), self.refused_series(user_id)
        for item_id, data in self.by_user(user_id).items():  # the user's own data, not every user's
            if data.position_ticks <= 0 or data.played:
                continue
            item = self.items.get(item_id)
            if item is None or item.library_id not in visible \
                    or (item.id if item.type == "Series" else item.series_id) in refused:
                continue
            if not types or item.type.lower() in types:
                out.append((data.last_played or datetime(1970, 1, 1, tzinfo=UTC), item))
        return [item for _, item in sorted(out, key=lambda pair: (pair[0], pair[1].id), reverse=True)]

    # -- libraries created through the API (aperture's own picks libraries) ---------------------
    def add_user(self, name: str, admin: bool = False) -> str:
        """A new user as the server's dashboard makes one: able to see every library. Returns the id."""
        with self.lock:
            user_id = hashlib.md5(f"user/{name}".encode()).hexdigest()
            self.users[user_id] = User(user_id, name, default_policy(admin, False, self), datetime.now(UTC))
            return user_id

    def create_folder(self, name: str, collection_type: str | None, paths: list[str]) -> dict:
        """Like the real servers: a taken name gets a numeric suffix (the API is not idempotent)."""
        from pathlib import Path

        for path in paths:
            if not Path(path).is_dir():
                raise ValueError(f"path does not exist: {path}")
        taken = {f["Name"] for f in self.folders}
        final, n = name, 2
        while final in taken:
            final, n = f"{name}{n}", n + 1
        item_id = self.new_id(f"library/{final}/{len(self.folders)}")
        folder = {"Name": final, "Locations": list(paths), "CollectionType": collection_type,
                  "ItemId": item_id, "RefreshStatus": "Idle", "_scanned": True}
        if self.mode == "emby":
            folder |= {"Id": item_id, "Guid": hashlib.md5(f"guid/{final}/{item_id}".encode()).hexdigest()}
        self.folders.append(folder)
        self.bump(library_id=item_id)
        return folder

    def delete_folder(self, name_or_id: str) -> bool:
        folder = next((f for f in self.folders if name_or_id in (f["Name"], f["ItemId"])), None)
        if folder is None:
            return False
        self.folders.remove(folder)
        for item_id in list(self.library_items(folder["ItemId"])):
            del self.items[item_id]
        self.bump(library_id=folder["ItemId"])
        return True

    def refresh(self, item_id: str) -> bool:
        folder = next((f for f in self.folders if f["ItemId"] == item_id), None)
        if folder is None:
            return item_id in self.items
        if folder.get("_scanned"):
            from aperture_dev.sample_server.scan import scan_folder

            scan_folder(self, folder)
        folder["_refreshes"] = folder.get("_refreshes", 0) + 1
        return True

    def scan_all(self) -> None:
        for folder in self.folders:
            self.refresh(folder["ItemId"])

    # -- mutations used by tests --------------------------------------------------------------
    def mark_played(self, user_id: str, item_id: str, played: bool = True, when: datetime | None = None) -> None:
        with self.lock:
            self.bump(items=False)
            data = self.user_data.setdefault((user_id, item_id), UserData())
            data.played = played
            if played:
                data.play_count = max(data.play_count, 0) + 1
                data.last_played = when or datetime.now(UTC).replace(microsecond=0)
                data.position_ticks = 0
            else:
                data.play_count = 0
                data.last_played = None

    def set_favorite(self, user_id: str, item_id: str, favorite: bool = True) -> None:
        with self.lock:
            self.bump(items=False)
            self.user_data.setdefault((user_id, item_id), UserData()).favorite = favorite

    def set_likes(self, user_id: str, item_id: str, likes: bool | None) -> None:
        """Like (True), dislike (False) or clear (None) an item, as the clients' thumbs up/down do."""
        with self.lock:
            self.bump(items=False)
            self.user_data.setdefault((user_id, item_id), UserData()).likes = likes

    def set_position(self, user_id: str, item_id: str, ticks: int) -> None:
        with self.lock:
            self.bump(items=False)
            data = self.user_data.setdefault((user_id, item_id), UserData())
            data.position_ticks, data.played = ticks, False
            data.last_played = datetime.now(UTC).replace(microsecond=0)

    def remove_series(self, series_id: str) -> str:
        """Take a series (with its seasons and episodes) off the server; returns a token to restore it."""
        with self.lock:
            self.bump()
            gone = [i for i in self.items.values() if series_id in (i.id, i.series_id)]
            for item in gone:
                del self.items[item.id]
            self.removed[series_id] = gone
            return series_id

    def restore_series(self, token: str) -> None:
        with self.lock:
            self.bump()
            for item in self.removed.pop(token):
                self.items[item.id] = item

    def rename_series(self, series_id: str, name: str) -> None:
        with self.lock:
            self.bump()
            for item in self.items.values():
                if item.id == series_id:
                    item.base["Name"], item.sort_key = name, sort_name(name)
                    item.extra["SortName"] = sort_name(name)
                elif item.series_id == series_id:
                    item.base["SeriesName"] = name

    def set_overview(self, series_id: str, overview: str) -> None:
        with self.lock:
            self.bump()
            self.items[series_id].extra["Overview"] = overview

    def regenerate_ids(self) -> dict[str, str]:
        """A library re-import: every series, season and episode gets a new item id; provider ids, numbers
        and paths stay, and user data follows the items (the real servers key it by provider ids).
        Returns {old id: new id}."""
        with self.lock:
            self.bump()
            mapping = {old: self.new_id(f"regenerated/{self.generation}/{old}") for old in self.items}
            items = {}
            for old, item in self.items.items():
                new = mapping[old]
                base = {**item.base, "Id": new}
                for key in ("SeriesId", "SeasonId"):
                    if key in base:
                        base[key] = mapping.get(base[key], base[key])
                items[new] = Item(new, item.type, item.library_id, mapping.get(item.series_id, item.series_id),
                                  mapping.get(item.season_id, item.season_id), item.sort_key, base, dict(item.extra),
                                  item.premiere)
            self.items = items
            self.user_data = {(uid, mapping.get(iid, iid)): data for (uid, iid), data in self.user_data.items()}
            return mapping

    def add_episode(self, season_id: str, number: int) -> str:
        with self.lock:
            self.bump()
            template = next(i for i in self.items.values() if i.season_id == season_id and i.type == "Episode")
            item_id = self.new_id(f"{season_id}/added/{number}")
            base = {**template.base, "Id": item_id, "IndexNumber": number, "Name": f"Episode {number}"}
            base.pop("IndexNumberEnd", None)
            self.items[item_id] = Item(item_id, "Episode", template.library_id, template.series_id, season_id,
                                       f"{template.sort_key[:-4]}{number:04d}", base, dict(template.extra))
            return item_id


def user_dto(user: User, mode: str) -> dict:
    dto = {
        "Name": user.name,
        "ServerId": SERVER_ID,
        "Id": user.id,
        "HasPassword": True,
        "HasConfiguredPassword": True,
        "HasConfiguredEasyPassword": False,
        "EnableAutoLogin": False,
        "LastLoginDate": wire_date(user.last_activity),
        "LastActivityDate": wire_date(user.last_activity),
        "Policy": {k: v for k, v in user.policy.items() if v is not None},  # null properties are omitted
    }
    if mode == "emby":
        dto.pop("HasConfiguredEasyPassword")
    return dto


def default_policy(admin: bool, disabled: bool, state: LibraryState | None = None) -> dict:
    """A new user's policy as the flavour writes it: every library, no parental controls. The list fields the
    server's UserPolicy has are present and empty (Emby 4.9 has no BlockedMediaFolders); MaxParentalRating is
    left out while unset (null properties are omitted)."""
    policy = {
        "IsAdministrator": admin,
        "IsHidden": False,
        "IsDisabled": disabled,
        "BlockedTags": [],
        "BlockUnratedItems": [],
        "EnableAllFolders": True,
        "EnabledFolders": [],
        "EnableContentDeletion": False,
        "EnableRemoteAccess": True,
        "EnableMediaPlayback": True,
        "AuthenticationProviderId": "Jellyfin.Server.Implementations.Users.DefaultAuthenticationProvider",
        "PasswordResetProviderId": "Jellyfin.Server.Implementations.Users.DefaultPasswordResetProvider",
    }
    if state is None or state.mode != "emby":
        policy |= {"AllowedTags": [], "BlockedMediaFolders": []}
    else:
        policy |= {"IncludeTags": [], "IsTagBlockingModeInclusive": False, "AllowTagOrRating": False,
                   "ExcludedSubFolders": []}
        if state.has_blocked_folders:
            policy["BlockedMediaFolders"] = []
    return policy


def data_policy(user: dict, state: LibraryState, locations: dict[str, str]) -> dict:
    """A user's wire policy from the data file's optional "policy" object (DATA_SCHEMA.md)."""
    policy = default_policy(user.get("admin", False), user.get("disabled", False), state)
    given = user.get("policy") or {}
    by_name = {f["Name"]: f for f in state.folders}
    if given.get("libraries") is not None:
        policy["EnableAllFolders"] = False
        policy["EnabledFolders"] = [str(by_name[name].get("Guid") or by_name[name]["ItemId"])
                                    for name in given["libraries"]]
    if given.get("max_parental_rating") is not None:
        value = rating_value(given["max_parental_rating"])
        if value is None:
            raise ValueError(f"{given['max_parental_rating']!r} is not on the parental rating scale")
        policy["MaxParentalRating"] = value
    policy["BlockUnratedItems"] = list(given.get("block_unrated") or [])
    policy["BlockedTags"] = list(given.get("blocked_tags") or [])
    allowed = list(given.get("allowed_tags") or [])
    if state.mode == "emby":
        policy["IncludeTags"], policy["IsTagBlockingModeInclusive"] = allowed, bool(allowed)
        excluded = []
        for path in given.get("excluded_subfolders") or []:
            library = next((name for name, root in locations.items()
                            if path == root or path.startswith(root.rstrip("/") + "/")), None)
            if library is None:
                raise ValueError(f"excluded sub-folder {path!r} is under no library")
            excluded.append(f"{by_name[library]['Guid']}_{path}")
        policy["ExcludedSubFolders"] = excluded
    else:  # Jellyfin has no sub-folder exclusion: excluded_subfolders does not apply
        policy["AllowedTags"] = allowed
    return policy


def _folded(values: object) -> set[str]:
    return {str(v).strip().casefold() for v in values if isinstance(v, str) and v.strip()} \
        if isinstance(values, list) else set()


# ItemFilter names (lowercased) -> test on (item, the user's data for it).
_ITEM_FILTERS = {
    "isfolder": lambda item, data: item.base.get("IsFolder") is True,
    "isnotfolder": lambda item, data: item.base.get("IsFolder") is not True,
    "isplayed": lambda item, data: data.played,
    "isunplayed": lambda item, data: not data.played,
    "isfavorite": lambda item, data: data.favorite,
    "isresumable": lambda item, data: data.position_ticks > 0 and not data.played,
    "likes": lambda item, data: data.likes is True,
    "dislikes": lambda item, data: data.likes is False,
    "isfavoriteorlikes": lambda item, data: data.favorite or data.likes is True,
}


def build_state(data: dict, mode: str = "jellyfin", version: str | None = None) -> LibraryState:
    """Turn a library description into live server state (deterministic ids)."""
    mode, version = resolve_flavour(mode, version)
    state = LibraryState(mode=mode, version=version)
    folder_ids = {}
    for lib in data["libraries"]:
        item_id = state.new_id(f"library/{lib['name']}")
        folder_ids[lib["name"]] = item_id
        folder = {"Name": lib["name"], "Locations": [lib["path"]], "CollectionType": lib["collection_type"],
                  "ItemId": item_id, "RefreshStatus": "Idle"}
        if mode == "emby":
            folder |= {"Id": item_id, "Guid": hashlib.md5(f"guid/{lib['name']}".encode()).hexdigest()}
        state.folders.append(folder)
    paths = {lib["name"]: lib["path"] for lib in data["libraries"]}
    episode_ids: dict[tuple[str, str], tuple[str, dict[tuple[int, int], str]]] = {}
    for series in data["series"]:
        for library in series["libraries"]:
            episode_ids[(series["key"], library)] = _add_series(state, series, folder_ids[library], paths[library])
    created = datetime(2025, 1, 1, tzinfo=UTC)
    data = {**data, "_by_key": {s["key"]: s for s in data["series"]}}
    for user in data["users"]:
        user_id = hashlib.md5(f"user/{user['name']}".encode()).hexdigest()
        state.users[user_id] = User(user_id, user["name"], data_policy(user, state, paths), created)
        for entry in user.get("history", []):
            _apply_history(state, user_id, entry, data, episode_ids)
    return state


def _add_series(state: LibraryState, s: dict, library_id: str, root: str) -> tuple[str, dict[tuple[int, int], str]]:
    """Add one library copy of a series; returns (series id, {(season, episode): episode id})."""
    key = f"{s['key']}@{library_id}"
    series_id = state.new_id(f"series/{key}")
    year = s.get("year")
    folder = f"{root}/{safe_component(s['name'])}" + (f" ({year})" if year else "")
    first = date.fromisoformat(s["first_aired"]) if s.get("first_aired") else (date(year, 1, 1) if year else None)
    runtime = int(s.get("runtime_minutes") or 30) * 60 * TICKS_PER_SECOND
    base = {
        "Name": s["name"], "ServerId": SERVER_ID, "Id": series_id, "Type": "Series", "IsFolder": True,
        "LocationType": "FileSystem", "RunTimeTicks": runtime,
        "ImageTags": {"Primary": hashlib.md5(f"img/{key}".encode()).hexdigest()},
    }
    optional = {"ProductionYear": year, "Status": s.get("status"), "OfficialRating": s.get("official_rating"),
                "CommunityRating": s.get("community_rating"),
                "PremiereDate": wire_date(first) if first else None,
                "EndDate": wire_date(date(s["end_year"], 12, 31)) if s.get("end_year") else None}
    base |= {k: v for k, v in optional.items() if v is not None}
    studios = [{"Name": n, "Id": _studio_id(n, state.mode)} for n in s.get("studios", [])]
    extra = {"ProviderIds": dict(s.get("provider_ids", {})), "Genres": list(s.get("genres", [])),
             "Studios": studios, "Tags": list(s.get("tags", [])), "Overview": s.get("overview") or "",
             "Path": folder, "DateCreated": wire_date(created_at(s)), "SortName": s.get("sort_name") or
             sort_name(s["name"])}
    if s.get("original_title"):
        extra["OriginalTitle"] = s["original_title"]
    sort_key = extra["SortName"]
    state.items[series_id] = Item(series_id, "Series", library_id, None, None, sort_key, base, extra)

    numbers: dict[tuple[int, int], str] = {}
    seasons = [(0, s.get("specials", 0))] if s.get("specials") else []
    seasons += list(enumerate(s["seasons"], start=1))
    multi = tuple(s["multi_episode"]) if s.get("multi_episode") else None
    air = first or date(2000, 1, 1)
    for season_no, count in seasons:
        season_id = state.new_id(f"season/{key}/{season_no}")
        season_name = "Specials" if season_no == 0 else f"Season {season_no}"
        sbase = {"Name": season_name, "ServerId": SERVER_ID, "Id": season_id, "Type": "Season", "IsFolder": True,
                 "IndexNumber": season_no, "SeriesId": series_id, "SeriesName": s["name"],
                 "LocationType": "FileSystem", "ImageTags": {}}
        state.items[season_id] = Item(season_id, "Season", library_id, series_id, season_id,
                                      f"{sort_key}/{season_no:04d}", sbase,
                                      {"Path": f"{folder}/{season_name}", "SortName": season_name.lower()})
        episode = 1
        extra_unnumbered = s.get("unnumbered_episodes", 0) if season_no == 1 else 0
        while episode <= count:
            spans = multi == (season_no, episode)
            end = episode + 1 if spans else None
            item_id = state.new_id(f"episode/{key}/{season_no}/{episode}")
            token = f"S{season_no:02d}E{episode:02d}" + (f"-E{end:02d}" if end else "")
            ebase = {"Name": f"Episode {episode}", "ServerId": SERVER_ID, "Id": item_id, "Type": "Episode",
                     "IsFolder": False, "ParentIndexNumber": season_no, "IndexNumber": episode,
                     "SeriesId": series_id, "SeriesName": s["name"], "SeasonId": season_id,
                     "SeasonName": season_name, "PremiereDate": wire_date(air), "ProductionYear": air.year,
                     "RunTimeTicks": runtime, "LocationType": "FileSystem", "MediaType": "Video", "ImageTags": {}}
            if end:
                ebase["IndexNumberEnd"] = end
            eextra = {"Path": f"{folder}/{season_name}/{safe_component(s['name'])} - {token}.mkv",
                      "DateCreated": wire_date(created_at(s) + timedelta(minutes=episode)),
                      "ProviderIds": {}, "SortName": f"{season_no:04d} - {episode:04d}"}
            state.items[item_id] = Item(item_id, "Episode", library_id, series_id, season_id,
                                        f"{sort_key}/{season_no:04d}/{episode:04d}", ebase, eextra)
            numbers[(season_no, episode)] = item_id
            if end:
                numbers[(season_no, end)] = item_id
            air += timedelta(days=7)
            episode += 2 if end else 1
        for extra_no in range(extra_unnumbered):
            item_id = state.new_id(f"episode/{key}/{season_no}/unnumbered/{extra_no}")
            ebase = {"Name": f"Bonus {extra_no + 1}", "ServerId": SERVER_ID, "Id": item_id, "Type": "Episode",
                     "IsFolder": False, "ParentIndexNumber": season_no, "SeriesId": series_id,
                     "SeriesName": s["name"], "SeasonId": season_id, "SeasonName": season_name,
                     "RunTimeTicks": runtime, "LocationType": "FileSystem", "MediaType": "Video", "ImageTags": {}}
            state.items[item_id] = Item(item_id, "Episode", library_id, series_id, season_id,
                                        f"{sort_key}/{season_no:04d}/9999/{extra_no}", ebase,
                                        {"Path": f"{folder}/{season_name}/bonus-{extra_no + 1}.mkv",
                                         "DateCreated": wire_date(created_at(s)), "ProviderIds": {}})
    return series_id, numbers


def _studio_id(name: str, mode: str) -> str | int:
    """Jellyfin studio ids are GUIDs; Emby's are numbers (NameLongIdPair.Id is int64 in its spec)."""
    digest = hashlib.md5(f"studio/{name}".encode()).hexdigest()
    return int(digest[:12], 16) if mode == "emby" else digest


def created_at(s: dict) -> datetime:
    digest = int(hashlib.md5(s["key"].encode()).hexdigest()[:6], 16)
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=digest % 500_000)


def _apply_history(state: LibraryState, user_id: str, entry: dict, data: dict, episode_ids: dict) -> None:
    series = data["_by_key"][entry["series"]]
    library = entry.get("library") or series["libraries"][0]
    series_id, numbers = episode_ids[(series["key"], library)]
    last = datetime.fromisoformat(entry["last_played"].replace("Z", "+00:00")) if entry.get("last_played") \
        else datetime(2026, 1, 1, tzinfo=UTC)
    through = entry.get("through")
    regular = sorted(k for k in numbers if k[0] > 0)
    if through == "all":
        played = regular
    elif through:
        played = [k for k in regular if k <= tuple(through)]
    else:
        played = []
    distinct = list(dict.fromkeys(numbers[k] for k in played))
    for offset, item_id in enumerate(reversed(distinct)):
        state.user_data[(user_id, item_id)] = UserData(
            played=True, play_count=int(entry.get("play_count") or 1), last_played=last - timedelta(days=offset))
    if entry.get("resume"):
        season, episode, percent = entry["resume"]
        item_id = numbers[(season, episode)]
        runtime = state.items[item_id].base["RunTimeTicks"]
        state.user_data[(user_id, item_id)] = UserData(position_ticks=int(runtime * percent / 100),
                                                       last_played=last + timedelta(hours=1))
    if entry.get("favorite"):
        state.user_data.setdefault((user_id, series_id), UserData()).favorite = True
    if entry.get("likes") is not None:
        state.user_data.setdefault((user_id, series_id), UserData()).likes = bool(entry["likes"])
