"""File and folder names for the library tree.

Titles come from the media server and may hold anything; every name built here is a single path component
that is valid on Linux, Windows/SMB and macOS shares (no separators, no reserved characters, no control
characters, never "", "." or "..", at most 255 UTF-8 bytes). NFO files carry the real title, so losing
characters in a name only affects how the folder looks on disk.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from pathlib import PurePosixPath

from aperture_resources.library.model import PickedSeries

# A picks library is always at `<root>/users/<Safe Name> [<short id>]/ai-series`: the layout is aperture's own
# mark, so its libraries are recognised under any root (an old APERTURE_LIBRARY_ROOT, another data dir).
SERIES_DIR = "ai-series"
_OWNER = re.compile(r" \[([0-9a-z]{1,12})\]$")


def owner_of(folder_name: str) -> str | None:
    """The short id a user folder name ends with, or None for anything that isn't one."""
    match = _OWNER.search(folder_name)
    return match.group(1) if match else None


def picks_owner(location: str) -> str | None:
    """The short id of the user whose picks folder `location` (a server path) is, by layout alone; None for
    a location that is not laid out as one."""
    path = PurePosixPath(location.rstrip("/") or "/")
    if path.name != SERIES_DIR or path.parent.parent.name != "users":
        return None
    return owner_of(path.parent.name)

MAX_COMPONENT_BYTES = 255
# Room kept for " - S00E00-E00" and the extension in episode file names.
EPISODE_TITLE_BYTES = 180
_FORBIDDEN = re.compile(r'[<>:"/\\|?*]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def _is_junk(ch: str) -> bool:
    # Cc = C0/C1 controls incl. NUL; Cs = lone surrogates (cannot be encoded as UTF-8).
    return unicodedata.category(ch) in ("Cc", "Cs")


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut to max_bytes of UTF-8 without splitting a multibyte character."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


@functools.lru_cache(maxsize=4096)  # pure; the plan asks for each series title once per episode
def safe_component(text: str | None, max_bytes: int = MAX_COMPONENT_BYTES, fallback: str = "Untitled") -> str:
    """`text` made into one safe path component of at most max_bytes UTF-8 bytes (emoji and RTL kept)."""
    if not fallback or max_bytes < len(fallback.encode("utf-8")):
        raise ValueError(f"max_bytes={max_bytes} cannot hold the fallback {fallback!r}")
    text = unicodedata.normalize("NFC", text or "")
    text = "".join(" " if _is_junk(ch) else ch for ch in text)
    text = _FORBIDDEN.sub("", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    if text.split(".")[0].strip().upper() in _WINDOWS_RESERVED:
        text = "_" + text  # CON, NUL, COM1... are device names on Windows/SMB whatever the extension
    return _truncate_utf8(text, max_bytes).rstrip(" .") or fallback


def _year_suffix(year: int | None) -> str:
    return f" ({year})" if year is not None and 1850 < year < 10000 else ""


def series_folder_name(pick: PickedSeries, disambiguator: str = "") -> str:
    """'Title (Year)' or 'Title', plus ' [disambiguator]' when another pick has the same name."""
    suffix = _year_suffix(pick.year) + (f" [{disambiguator}]" if disambiguator else "")
    return safe_component(pick.title, MAX_COMPONENT_BYTES - len(suffix.encode("utf-8"))) + suffix


def _id_hash(series_id: str, digits: int) -> str:
    return hashlib.sha256(series_id.encode("utf-8")).hexdigest()[:digits]


def series_folder_names(picks: Iterable[PickedSeries]) -> dict[str, str]:
    """Folder name per series_id, distinct even on case-insensitive filesystems.

    Every pick whose name clashes gets a short hash of its series_id appended, so a name depends only on the
    series itself and on whether a clash exists, never on rank order: swapping ranks renames nothing. A
    (vanishingly unlikely) clash between hashes is settled by a longer hash.
    """
    picks = list(picks)
    names = {p.series_id: series_folder_name(p) for p in picks}
    for digits in (8, 16, 64):
        groups: dict[str, list[str]] = defaultdict(list)
        for series_id, name in names.items():
            groups[name.casefold()].append(series_id)
        clashing = {sid for ids in groups.values() if len(ids) > 1 for sid in ids}
        if not clashing:
            return names
        for p in picks:
            if p.series_id in clashing:
                names[p.series_id] = series_folder_name(p, _id_hash(p.series_id, digits))
    raise ValueError("series folder names still clash after disambiguation (duplicate series_id?)")


def slug(title: str | None) -> str:
    """ASCII lowercase-with-dashes form of a title for the placeholder file name; 'series' if nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-") or "series"


def season_folder_name(season: int) -> str:
    """'Season 00' for specials (the name both servers map to specials), else 'Season <n>'."""
    return "Season 00" if season == 0 else f"Season {season}"


def episode_stem(series_title: str, season: int, episode: int, episode_end: int | None = None) -> str:
    """'<Series Title> - S01E02' or, for a multi-episode file, '<Series Title> - S01E01-E02' (no extension)."""
    token = f"S{season:02d}E{episode:02d}"
    if episode_end is not None and episode_end > episode:
        token += f"-E{episode_end:02d}"
    return f"{safe_component(series_title, EPISODE_TITLE_BYTES)} - {token}"
