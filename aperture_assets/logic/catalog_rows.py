"""Pure mapping from media-server item JSON to catalog rows (no I/O, unit-tested directly).

Servers omit null properties and sometimes send odd values; every accessor here tolerates missing
or malformed fields so one bad item never sinks a sync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime

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


def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def as_text(value: object) -> str | None:
    """A non-blank string, without NUL bytes (PostgreSQL text cannot hold them: one would sink the whole sync)."""
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "")
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


def series_row(item: dict, library_id: str, poster_url: str | None) -> tuple:
    studios = text_list(item.get("Studios"), "Name")
    end = parse_date(item.get("EndDate"))
    name = as_text(item.get("Name")) or f"Untitled series {item['Id']}"
    return (
        item["Id"], library_id, name, as_text(item.get("SortName")), as_text(item.get("OriginalTitle")),
        as_int(item.get("ProductionYear")), end.year if end else None, as_text(item.get("Overview")),
        text_list(item.get("Genres")), text_list(item.get("Tags")), studios[0] if studios else None, studios,
        as_text(item.get("Status")), as_text(item.get("OfficialRating")), as_float(item.get("CommunityRating")),
        poster_url, *provider_ids(item), parse_date(item.get("PremiereDate")),
        parse_datetime(item.get("DateCreated")), as_text(item.get("Path")),
    )


def season_row(item: dict) -> tuple:
    return (item["Id"], as_text(item.get("SeriesId")) or "", as_int(item.get("IndexNumber")),
            as_text(item.get("Name")))


def episode_row(item: dict) -> tuple:
    return (
        item["Id"], as_text(item.get("SeriesId")) or "", as_text(item.get("SeasonId")),
        as_int(item.get("ParentIndexNumber")), as_int(item.get("IndexNumber")),
        as_int(item.get("IndexNumberEnd")), as_text(item.get("Name")), parse_date(item.get("PremiereDate")),
        as_int(item.get("RunTimeTicks")), as_text(item.get("Path")), parse_datetime(item.get("DateCreated")),
        *provider_ids(item),
    )


def library_row(folder: dict) -> tuple:
    return (
        str(folder.get("ItemId") or folder.get("Id") or ""), as_text(folder.get("Name")) or "",
        as_text(folder.get("CollectionType")), text_list(folder.get("Locations")), as_text(folder.get("Guid")),
    )


def unique_rows(items: Iterable[dict], to_row: Callable[[dict], tuple]) -> tuple[list[tuple], int]:
    """Rows for items with a string Id, first copy wins; returns (rows, items skipped as malformed)."""
    rows: dict[str, tuple] = {}
    skipped = 0
    for item in items:
        item_id = item.get("Id") if isinstance(item, dict) else None
        if not isinstance(item_id, str | int) or isinstance(item_id, bool) or not str(item_id):
            skipped += 1
            continue
        item = {**item, "Id": str(item_id)}
        rows.setdefault(item["Id"], to_row(item))
    return list(rows.values()), skipped


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return bool(root) and (path == root or path.startswith(root + "/"))


def select_tv_libraries(folders: Sequence[dict], wanted: Sequence[str], picks_root: str = "") -> list[dict]:
    """The TV libraries to sync: the named ones, else every `tvshows` library that isn't our own output.

    Libraries located under the picks root are aperture's own "AI Picks" output and are never read
    back, or the picks would feed on themselves.
    """
    tv = [f for f in folders if str(f.get("CollectionType") or "").lower() == "tvshows"]
    own = [f for f in tv if any(_under(loc, picks_root) for loc in text_list(f.get("Locations")))]
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
