"""Kodi-style NFO files read by both Jellyfin and Emby.

Rendered with lxml (escaping, UTF-8 declaration) after dropping characters XML 1.0 forbids, so every file
parses whatever the metadata holds. Output is a pure function of the input: the same pick renders the same
bytes on every run, which is what lets the writer skip unchanged files. In particular `dateadded` is never
"now": it is the rank date, stable while the series keeps its rank.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from lxml import etree

from aperture_resources.library.model import EpisodeSource, PickedSeries

PLACEHOLDER_TITLE = "aperture rank placeholder"
_RANK_ONE_DATE = date(2125, 1, 1)
_TICKS_PER_MINUTE = 600_000_000
# Everything outside the XML 1.0 Char production (C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF).
_ILLEGAL_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """`value` without the characters XML 1.0 cannot represent."""
    return _ILLEGAL_XML.sub("", value)


def rank_date(rank: int) -> date:
    """Far-future 'date added' that orders Emby's home row by rank: rank 1 -> 2125-01-01, one day earlier per rank."""
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    return _RANK_ONE_DATE - timedelta(days=rank - 1)


def _dateadded(rank: int) -> str:
    return f"{rank_date(rank).isoformat()} 00:00:00"


def _add(parent: etree._Element, tag: str, value: object | None, **attrib: str) -> None:
    """Append <tag>value</tag>, skipping empty values."""
    if value is None or value == "":
        return
    etree.SubElement(parent, tag, attrib).text = xml_text(str(value))


def _render(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True, pretty_print=True)


def sort_title(rank: int, title: str) -> str:
    """'001 - Title': keeps rank order wherever the server sorts by name (ranks up to 999)."""
    return f"{rank:03d} - {title}"


def tvshow_nfo(pick: PickedSeries) -> bytes:
    """tvshow.nfo for a picked series; lockdata stops the server's fetchers from overwriting it."""
    root = etree.Element("tvshow")
    etree.SubElement(root, "title").text = xml_text(pick.title)
    _add(root, "originaltitle", pick.original_title)
    _add(root, "sorttitle", sort_title(pick.rank, pick.title))
    _add(root, "plot", "\n\n".join(text for text in (pick.reason, pick.overview) if text))
    if pick.year is not None and 1850 < pick.year < 10000:
        _add(root, "year", pick.year)
    _add(root, "premiered", pick.premiere_date and pick.premiere_date.isoformat())
    if pick.end_year is not None and 1850 < pick.end_year < 10000:
        # Only the year is known; the servers display only the year of an end date.
        _add(root, "enddate", f"{pick.end_year:04d}-12-31")
    _add(root, "status", pick.status)
    _add(root, "mpaa", pick.official_rating)
    _add(root, "rating", None if pick.community_rating is None else f"{pick.community_rating:.1f}")
    for genre in pick.genres:
        _add(root, "genre", genre)
    for studio in pick.studios:
        _add(root, "studio", studio)
    ids = (("tvdb", pick.tvdb_id), ("tmdb", pick.tmdb_id), ("imdb", pick.imdb_id))
    for i, (kind, value) in enumerate((kind, value) for kind, value in ids if value):
        _add(root, "uniqueid", value, type=kind, **({"default": "true"} if i == 0 else {}))
    _add(root, "lockdata", "true")
    _add(root, "dateadded", _dateadded(pick.rank))
    return _render(root)


def placeholder_nfo(pick: PickedSeries, episode_number: int) -> bytes:
    """NFO of the Season 00 sorting placeholder: its dateadded (the rank date) is what Emby sorts by."""
    root = etree.Element("episodedetails")
    _add(root, "title", PLACEHOLDER_TITLE)
    _add(root, "showtitle", pick.title)
    _add(root, "season", 0)
    _add(root, "episode", episode_number)
    _add(
        root,
        "plot",
        f"Sorting placeholder created by aperture, not a real episode. Its far-future date added keeps this "
        f"library's home row in recommendation order (rank {pick.rank}). aperture marks it watched "
        f"automatically so it never shows up in Continue Watching or Next Up.",
    )
    _add(root, "lockdata", "true")
    _add(root, "dateadded", _dateadded(pick.rank))
    return _render(root)


def episode_nfo(series_title: str, episode: EpisodeSource) -> bytes:
    """Episode NFO: title, numbers, air date and runtime, which the server cannot probe from a .strm file."""
    root = etree.Element("episodedetails")
    _add(root, "title", episode.name)
    _add(root, "showtitle", series_title)
    _add(root, "season", episode.season)
    _add(root, "episode", episode.episode)
    if episode.episode_end is not None and episode.episode is not None and episode.episode_end > episode.episode:
        _add(root, "episodenumberend", episode.episode_end)
    _add(root, "aired", episode.premiere_date and episode.premiere_date.isoformat())
    if episode.runtime_ticks and episode.runtime_ticks > 0:
        _add(root, "runtime", max(1, round(episode.runtime_ticks / _TICKS_PER_MINUTE)))
    _add(root, "lockdata", "true")
    return _render(root)
