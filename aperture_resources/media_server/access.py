"""What a user may open, as the media server decides it: their policy read into one value, and the test a
series must pass before it may be picked for them or linked into their library (pure, no I/O).

Both servers' policy fields are read here (a field one server lacks is simply absent):
- libraries: `EnableAllFolders` / `EnabledFolders` (permission ids), `BlockedMediaFolders` (Jellyfin, Emby
  4.8), Emby's `ExcludedSubFolders` (`<library Guid>_<location path>`: one location of a library);
- parental controls: `MaxParentalRating` on the server's own scale (`GET /Localization/ParentalRatings`),
  `BlockUnratedItems` (containing "Series"), `BlockedTags`, and the allow lists: Jellyfin `AllowedTags`,
  Emby `IncludeTags` with `IsTagBlockingModeInclusive`.

Fail closed: a policy that is missing or malformed allows nothing, a rating the scale cannot place is over
any limit (the server would call it unrated; an empty scale must not open everything), and an excluded
sub-folder whose form is not understood excludes its whole library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

RULES = ("access", "rating", "tags")  # the order a refused series is counted in


def _folded(values: object) -> frozenset[str]:
    if not isinstance(values, list):
        return frozenset()
    return frozenset(str(v).strip().casefold() for v in values if isinstance(v, str | int) and str(v).strip())


def _ids(values: object) -> frozenset[str]:
    """Permission ids compared as the servers write them (Jellyfin GUIDs with or without dashes)."""
    return frozenset(v.replace("-", "") for v in _folded(values))


@dataclass(frozen=True)
class AccessRules:
    """One user's policy, as far as picking a series is concerned."""

    all_folders: bool = False
    folders: frozenset[str] = frozenset()  # permission ids the user may open (when not all_folders)
    blocked_folders: frozenset[str] = frozenset()
    excluded_locations: frozenset[tuple[str, str]] = frozenset()  # (permission id, location path)
    excluded_libraries: frozenset[str] = frozenset()  # excluded sub-folders not understood: the whole library
    max_rating: int | None = None
    block_unrated: bool = False
    blocked_tags: frozenset[str] = frozenset()
    allowed_tags: frozenset[str] = frozenset()  # non-empty: a series needs one of them

    @property
    def restricts_content(self) -> bool:
        return self.max_rating is not None or self.block_unrated or bool(self.blocked_tags or self.allowed_tags)


NOTHING = AccessRules()  # what a user without a readable policy may open


def parse_policy(policy: object) -> AccessRules:
    """The rules of a user's `Policy` object; NOTHING if it is not one."""
    if not isinstance(policy, Mapping):
        return NOTHING
    max_rating = policy.get("MaxParentalRating")
    allowed = _folded(policy.get("AllowedTags"))
    if policy.get("IsTagBlockingModeInclusive") is True:
        allowed |= _folded(policy.get("IncludeTags"))
    located, whole = set(), set()
    for entry in _folded(policy.get("ExcludedSubFolders")):
        library, _, location = entry.partition("_")
        if library and location.startswith("/"):
            located.add((library.replace("-", ""), location.rstrip("/") or "/"))
        else:
            whole.add(library.replace("-", "") or entry)
    return AccessRules(
        all_folders=policy.get("EnableAllFolders") is True,
        folders=_ids(policy.get("EnabledFolders")),
        blocked_folders=_ids(policy.get("BlockedMediaFolders")),
        excluded_locations=frozenset(located),
        excluded_libraries=frozenset(whole),
        max_rating=max_rating if isinstance(max_rating, int) and not isinstance(max_rating, bool) else None,
        block_unrated="series" in _folded(policy.get("BlockUnratedItems")),
        blocked_tags=_folded(policy.get("BlockedTags")),
        allowed_tags=allowed,
    )


def parse_scale(ratings: object) -> dict[str, int]:
    """The server's parental rating scale (`[{Name, Value}]`) as folded name -> value; entries without a whole
    number value are left out (so such a rating counts as unrated)."""
    scale: dict[str, int] = {}
    for entry in ratings if isinstance(ratings, list) else []:
        if not isinstance(entry, Mapping):
            continue
        name, value = entry.get("Name"), entry.get("Value")
        if isinstance(name, str) and name.strip() and isinstance(value, int) and not isinstance(value, bool):
            scale[name.strip().casefold()] = value
    return scale


def rating_value(scale: Mapping[str, int], rating: str | None) -> int | None:
    """A series' `OfficialRating` on the scale; a country prefix ("US-TV-14") is tried without it too."""
    if not rating or not rating.strip():
        return None
    folded = rating.strip().casefold()
    if folded in scale:
        return scale[folded]
    country, _, rest = folded.partition("-")
    return scale.get(rest) if len(country) == 2 and rest else None


@dataclass(frozen=True)
class SeriesCopy:
    """One library's copy of a series, with what the rules look at."""

    series_id: str
    library: str  # the permission id of its library
    path: str | None
    official_rating: str | None
    tags: tuple[str, ...]


def _under(path: str | None, location: str) -> bool:
    return path is not None and (path == location or path.startswith(location.rstrip("/") + "/"))


def library_key(permission_id: str) -> str:
    """A library's permission id as policies are compared with it (`_ids`: no dashes, case folded)."""
    return permission_id.replace("-", "").casefold()


def refusal(rules: AccessRules, scale: Mapping[str, int], copy: SeriesCopy) -> str | None:
    """The first rule (of RULES) that keeps this copy from the user, or None if they may open it."""
    library = library_key(copy.library)
    if (not rules.all_folders and library not in rules.folders) or library in rules.blocked_folders \
            or library in rules.excluded_libraries \
            or any(lib == library and _under(copy.path, loc) for lib, loc in rules.excluded_locations):
        return "access"
    if rules.max_rating is not None or rules.block_unrated:
        rated = bool(copy.official_rating and copy.official_rating.strip())
        value = rating_value(scale, copy.official_rating)
        if value is None and rules.block_unrated:  # the server counts a rating off its scale as unrated too
            return "rating"
        # a rating the scale cannot place may be above the limit (an empty scale places none): refused
        if rated and rules.max_rating is not None and (value is None or value > rules.max_rating):
            return "rating"
    tags = {t.strip().casefold() for t in copy.tags}
    if tags & rules.blocked_tags or (rules.allowed_tags and not tags & rules.allowed_tags):
        return "tags"
    return None


def first_allowed(rules: AccessRules, scale: Mapping[str, int], copies: Iterable[SeriesCopy]) -> \
        tuple[SeriesCopy | None, str | None]:
    """The first copy the user may open, else None and the rule that refused the first copy."""
    reason = None
    for copy in copies:
        refused = refusal(rules, scale, copy)
        if refused is None:
            return copy, None
        reason = reason or refused
    return None, reason


@dataclass(frozen=True)
class ServerAccess:
    """Every listed user's rules, read once per run with the scale and the libraries' permission ids."""

    rules: Mapping[str, AccessRules]  # by user id; a user missing here may open nothing
    permission_ids: Mapping[str, str]  # library ItemId -> the id policies name it by
    scale: Mapping[str, int]

    def of(self, user_id: str) -> AccessRules:
        return self.rules.get(user_id, NOTHING)

    def copy(self, series_id: str, library_id: str | None, path: str | None, official_rating: str | None,
             tags: Iterable[str]) -> SeriesCopy:
        """A catalog series as the rules see it (its library by permission id)."""
        library = self.permission_ids.get(library_id or "", library_id or "")
        return SeriesCopy(series_id, library, path, official_rating, tuple(tags))


def read_access(client, users: Iterable[Mapping], folders: Iterable[Mapping]) -> ServerAccess:
    """The users' rules from their `Policy` (as listed by the server this run), the libraries' permission ids and,
    when any user has a parental limit, the server's rating scale (one request)."""
    rules = {str(user["Id"]): parse_policy(user.get("Policy")) for user in users if user.get("Id")}
    permission_ids = {str(f["ItemId"]): client.permission_id(dict(f)) for f in folders if f.get("ItemId")}
    needs_scale = any(r.max_rating is not None or r.block_unrated for r in rules.values())
    scale = parse_scale(client.parental_ratings()) if needs_scale else {}
    return ServerAccess(rules, permission_ids, scale)
