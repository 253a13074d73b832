"""NFO rendering: golden files, well-formed XML whatever the metadata, and the Emby rank dates.

Regenerate the golden files with APERTURE_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from aperture_resources.library.model import EpisodeSource, PickedSeries
from aperture_resources.library.nfo import (
    PLACEHOLDER_TITLE,
    episode_nfo,
    placeholder_nfo,
    rank_date,
    tvshow_nfo,
    xml_text,
)

GOLDEN = Path(__file__).parent / "golden" / "library"


def check_golden(name: str, actual: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("APERTURE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
    assert actual == path.read_bytes(), f"{name} differs from its golden file (APERTURE_UPDATE_GOLDEN=1 to update)"


def pick(title: str = "Breaking Bad", rank: int = 1, **changes: object) -> PickedSeries:
    fields: dict = dict(
        rank=rank, series_id="s-bb", title=title, year=2008, original_title="Breaking Bad",
        overview="A chemistry teacher & his former student cook <meth>.", genres=("Drama", "Crime"),
        studios=("AMC",), status="Ended", official_rating="TV-MA", community_rating=8.94,
        premiere_date=date(2008, 1, 20), end_year=2013, tvdb_id="81189", tmdb_id="1396", imdb_id="tt0903747",
        episodes=(),
    )  # fmt: skip
    fields.update(changes)
    return PickedSeries(**fields)


EPISODE = EpisodeSource(
    item_id="e1", season=1, episode=1, episode_end=2, name='Pilot "Part 1" & 2', path="/media/tv/bb/s01e01.mkv",
    premiere_date=date(2008, 1, 20), runtime_ticks=58 * 60 * 10_000_000 + 29 * 10_000_000,
)  # fmt: skip


def test_tvshow_nfo_golden() -> None:
    check_golden("tvshow.nfo", tvshow_nfo(pick(rank=3)))


def test_tvshow_nfo_minimal_golden() -> None:
    minimal = pick(
        title="Untitled Show", original_title=None, overview=None, genres=(), studios=(), status=None, year=1800,
        official_rating=None, community_rating=None, premiere_date=None, end_year=None, tvdb_id=None,
        tmdb_id=None, imdb_id="tt1",
    )  # fmt: skip
    check_golden("tvshow-minimal.nfo", tvshow_nfo(minimal))


def test_placeholder_nfo_golden() -> None:
    check_golden("placeholder.nfo", placeholder_nfo(pick(rank=2), 9999))


def test_episode_nfo_golden() -> None:
    check_golden("episode.nfo", episode_nfo("Breaking Bad", EPISODE))


def test_tvshow_fields() -> None:
    root = etree.fromstring(tvshow_nfo(pick(rank=7)))
    assert root.tag == "tvshow"
    assert root.findtext("sorttitle") == "007 - Breaking Bad"
    assert root.findtext("dateadded") == "2124-12-26 00:00:00"
    assert root.findtext("premiered") == "2008-01-20"
    assert root.findtext("lockdata") == "true"
    ids = [(u.get("type"), u.get("default"), u.text) for u in root.findall("uniqueid")]
    assert ids == [("tvdb", "true", "81189"), ("tmdb", None, "1396"), ("imdb", None, "tt0903747")]
    minimal = etree.fromstring(tvshow_nfo(pick(year=1850, tvdb_id=None, tmdb_id="1396")))
    assert minimal.find("year") is None
    assert minimal.find("uniqueid").get("type") == "tmdb"
    assert minimal.find("uniqueid").get("default") == "true"


def test_placeholder_fields() -> None:
    root = etree.fromstring(placeholder_nfo(pick(rank=40), 10001))
    assert root.tag == "episodedetails"
    assert root.findtext("title") == PLACEHOLDER_TITLE
    assert (root.findtext("season"), root.findtext("episode")) == ("0", "10001")
    assert root.findtext("dateadded") == "2124-11-23 00:00:00"
    assert "placeholder" in root.findtext("plot") and "watched" in root.findtext("plot")


def test_episode_fields() -> None:
    root = etree.fromstring(episode_nfo("Breaking Bad", EPISODE))
    assert root.findtext("title") == 'Pilot "Part 1" & 2'
    assert root.findtext("runtime") == "58"
    assert root.findtext("episodenumberend") == "2"
    bare = EpisodeSource("e2", 0, 3, None, None, None, None, 1)
    root = etree.fromstring(episode_nfo("Breaking Bad", bare))
    assert root.find("title") is None and root.find("aired") is None
    assert root.findtext("runtime") == "1"  # a positive runtime never shows as 0 minutes


@pytest.mark.parametrize(
    ("rank", "expected"),
    [(1, date(2125, 1, 1)), (2, date(2124, 12, 31)), (3, date(2124, 12, 30)), (40, date(2124, 11, 23))],
)
def test_rank_dates(rank: int, expected: date) -> None:
    assert rank_date(rank) == expected


def test_rank_dates_strictly_decrease_and_reject_zero() -> None:
    dates = [rank_date(r) for r in range(1, 1000)]
    assert dates == sorted(dates, reverse=True) and len(set(dates)) == len(dates)
    with pytest.raises(ValueError):
        rank_date(0)


def test_output_is_stable() -> None:
    assert tvshow_nfo(pick()) == tvshow_nfo(pick())
    assert tvshow_nfo(pick(rank=1)) != tvshow_nfo(pick(rank=2))


HOSTILE = ["Tom & Jerry", "<script>", 'say "hi"', "nul\0here", "bell\x07\x1b[0m", "\ufffe\uffff", "🦑 שטיסל", "]]>"]


@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_titles_parse_and_round_trip(title: str) -> None:
    for data, tag in (
        (tvshow_nfo(pick(title=title, overview=title, genres=(title,))), "title"),
        (placeholder_nfo(pick(title=title), 9999), "showtitle"),
        (episode_nfo(title, EPISODE), "showtitle"),
    ):
        assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'")
        assert etree.fromstring(data).findtext(tag) == xml_text(title)


@given(st.text(), st.text(), st.integers(1, 5000))
def test_property_any_metadata_parses_and_round_trips(title: str, overview: str, rank: int) -> None:
    root = etree.fromstring(tvshow_nfo(pick(title=title, rank=rank, overview=overview, studios=(title,))))
    assert root.findtext("title") == xml_text(title)
    assert root.findtext("plot") in (xml_text(overview), None)
    episode = EpisodeSource("e", 1, 1, None, title, None, None, None)
    assert etree.fromstring(episode_nfo(title, episode)).findtext("title") in (xml_text(title), None)
