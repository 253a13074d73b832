"""Pure mapping from media-server item JSON to catalog rows (no I/O, unit-tested directly).

Server data is untrusted. Servers omit null properties and sometimes send odd values: every accessor here
tolerates missing or malformed fields, numbers outside what the field can mean (and the database can hold)
are dropped with a warning naming the item, text is made valid UTF-8 without NUL, and an item whose row
cannot be built at all is skipped and named, so one bad item never sinks a sync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime

from aperture_resources.library.naming import picks_owner
from aperture_resources.settings import ConfigError


def parse_datetime(value: object) -> datetime | None:
    """Parse server timestamps like 2024-05-01T20:13:44.0000000Z; None if absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # trim 7-digit .NET fractions to microseconds, keep any offset
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        offset = rest[len(digits):]
        text = f"{head}.{digits[:6]}{offset}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # servers write UTC


def parse_date(value: object) -> date | None:
    parsed = parse_datetime(value)
    return parsed.date() if parsed else None


INT32 = (-(2**31), 2**31 - 1)
# What each numeric field can mean; a value outside is dropped (it would also overflow its column).
BOUNDS: dict[str, tuple[float, float]] = {
    "IndexNumber": (0, 100_000), "IndexNumberEnd": (0, 100_000), "ParentIndexNumber": (0, 10_000),
    "ProductionYear": (1800, 2300), "CommunityRating": (0, 10), "RunTimeTicks": (0, 10**7 * 3600 * 24 * 7),
    "PlayCount": (0, 1_000_000), "PlaybackPositionTicks": (0, 10**7 * 3600 * 24 * 7), "PlayedPercentage": (0, 100),
}


def as_int(value: object, bounds: tuple[float, float] = INT32) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and bounds[0] <= value <= bounds[1] else None


def as_float(value: object, bounds: tuple[float, float] = (-1e30, 1e30)) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if bounds[0] <= value <= bounds[1] else None  # also drops inf and nan


def field_int(item: dict, field: str) -> int | None:
    return as_int(item.get(field), BOUNDS[field])


def field_float(item: dict, field: str) -> float | None:
    return as_float(item.get(field), BOUNDS[field])


def out_of_range(item: dict) -> list[str]:
    """The item's numeric fields that are present but unusable, as `Field=value` (for the warning)."""
    return [f"{field}={str(item[field])[:40]}" for field in BOUNDS
            if item.get(field) is not None and not isinstance(item[field], bool)
            and isinstance(item[field], int | float) and as_float(item[field], BOUNDS[field]) is None]


def as_text(value: object) -> str | None:
    """A non-blank string of valid UTF-8 without NUL bytes (PostgreSQL text holds neither a NUL nor a lone
    surrogate: one would sink the whole sync)."""
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return value if value.strip() else None


def text_list(values: object, key: str | None = None) -> list[str]:
    """Strings from a list of strings, or of {key: ...} objects (Studios)."""
    if not isinstance(values, list):
        return []
    out = []
    for value in values:
        item = as_text(value.get(key) if key and isinstance(value, dict) else value)
        if item:
            out.append(item.strip())
    return out


def provider_ids(item: dict) -> tuple[str | None, str | None, str | None]:
    """(tvdb, tmdb, imdb) from ProviderIds, matching keys case-insensitively."""
    raw = item.get("ProviderIds")
    ids = {str(k).lower(): as_text(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    return ids.get("tvdb"), ids.get("tmdb"), ids.get("imdb")


def primary_image_tag(item: dict) -> str | None:
    tags = item.get("ImageTags")
    return as_text(tags.get("Primary")) if isinstance(tags, dict) else None


def series_row(item: dict, library_id: str, poster_path: str | None) -> tuple:
    studios = text_list(item.get("Studios"), "Name")
    end = parse_date(item.get("EndDate"))
    name = as_text(item.get("Name")) or f"Untitled series {item['Id']}"
    return (
        item["Id"], library_id, name, as_text(item.get("SortName")), as_text(item.get("OriginalTitle")),
        field_int(item, "ProductionYear"), end.year if end else None, as_text(item.get("Overview")),
        text_list(item.get("Genres")), text_list(item.get("Tags")) or text_list(item.get("TagItems"), "Name"),
        studios[0] if studios else None, studios,
        as_text(item.get("Status")), as_text(item.get("OfficialRating")), field_float(item, "CommunityRating"),
        poster_path, *provider_ids(item), parse_date(item.get("PremiereDate")),
        parse_datetime(item.get("DateCreated")), as_text(item.get("Path")),
    )


def season_row(item: dict) -> tuple:
    return (item["Id"], as_text(item.get("SeriesId")) or "", field_int(item, "IndexNumber"),
            as_text(item.get("Name")))


def episode_row(item: dict) -> tuple:
    return (
        item["Id"], as_text(item.get("SeriesId")) or "", as_text(item.get("SeasonId")),
        field_int(item, "ParentIndexNumber"), field_int(item, "IndexNumber"),
        field_int(item, "IndexNumberEnd"), as_text(item.get("Name")), parse_date(item.get("PremiereDate")),
        field_int(item, "RunTimeTicks"), as_text(item.get("Path")), parse_datetime(item.get("DateCreated")),
        *provider_ids(item),
    )


def library_row(folder: dict) -> tuple:
    return (
        str(folder.get("ItemId") or folder.get("Id") or ""), as_text(folder.get("Name")) or "",
        as_text(folder.get("CollectionType")), text_list(folder.get("Locations")), as_text(folder.get("Guid")),
    )


def describe(item: dict) -> str:
    return f"{as_text(item.get('Type')) or 'item'} {item.get('Id')} ({(as_text(item.get('Name')) or '?')[:60]!r})"


def unique_rows(items: Iterable[dict], to_row: Callable[[dict], tuple], problems: list[str] | None = None
                ) -> tuple[list[tuple], int]:
    """Rows for items with a string Id, first copy wins; returns (rows, items skipped as malformed). Items
    whose row cannot be built are skipped too; each skip and each dropped value is named in `problems`."""
    rows: dict[str, tuple] = {}
    skipped = 0
    notes = problems if problems is not None else []
    for item in items:
        item_id = item.get("Id") if isinstance(item, dict) else None
        if not isinstance(item_id, str | int) or isinstance(item_id, bool) or not str(item_id):
            skipped += 1
            continue
        item = {**item, "Id": str(item_id)}
        if item["Id"] in rows:
            continue
        try:
            rows[item["Id"]] = to_row(item)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            skipped += 1
            notes.append(f"{describe(item)} skipped: {type(exc).__name__} {str(exc)[:80]}")
            continue
        dropped = out_of_range(item)
        if dropped:
            notes.append(f"{describe(item)}: dropped out-of-range {', '.join(dropped)}")
    return list(rows.values()), skipped


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return bool(root) and (path == root or path.startswith(root + "/"))


def select_tv_libraries(folders: Sequence[dict], wanted: Sequence[str], picks_root: str = "") -> list[dict]:
    """The TV libraries to sync: the named ones, else every `tvshows` library that isn't our own output.

    Libraries under the picks root, or laid out as picks folders under any other root (an earlier
    APERTURE_LIBRARY_ROOT, another data dir), are aperture's own "AI Picks" output and are never read
    back, or the picks would feed on themselves.
    """
    tv = [f for f in folders if str(f.get("CollectionType") or "").lower() == "tvshows"]
    own = [f for f in tv if any(_under(loc, picks_root) or picks_owner(loc) is not None
                                for loc in text_list(f.get("Locations")))]
    candidates = [f for f in tv if f not in own]
    if wanted:
        by_name = {str(f.get("Name", "")).casefold(): f for f in candidates}
        missing = [name for name in wanted if name.casefold() not in by_name]
        if missing:
            have = ", ".join(sorted(str(f.get("Name")) for f in candidates)) or "none"
            raise ConfigError(
                f"APERTURE_TV_LIBRARIES names {', '.join(map(repr, missing))}, but the server's TV libraries "
                f"are: {have}."
            )
        return [by_name[name.casefold()] for name in wanted]
    if not candidates:
        raise ConfigError("The media server has no TV library (CollectionType tvshows); add one, or set "
                          "APERTURE_TV_LIBRARIES.")
    return candidates


def shrunken_libraries(before: dict[str, int], now: dict[str, int], threshold: float) -> list[str]:
    """Libraries that lost more than `threshold` of their series in one read (and at least two): a library
    that reads back empty or far shorter is far likelier a bad read (an unmounted disk, a scan in progress)
    than shows deleted, so nothing is marked removed on it."""
    return sorted(lib for lib, count in before.items()
                  if (lost := count - now.get(lib, 0)) >= 2 and lost / count > threshold)
