"""Names in the library tree: hostile titles always become one safe path component."""

from __future__ import annotations

import os
from pathlib import PurePosixPath, PureWindowsPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aperture_resources.library.model import PickedSeries
from aperture_resources.library.naming import (
    MAX_COMPONENT_BYTES,
    episode_stem,
    safe_component,
    season_folder_name,
    series_folder_name,
    series_folder_names,
    slug,
)


def pick(series_id: str, title: str, year: int | None = 2008, rank: int = 1) -> PickedSeries:
    return PickedSeries(
        rank=rank, series_id=series_id, title=title, year=year, original_title=None, overview=None, genres=(),
        studios=(), status=None, official_rating=None, community_rating=None, premiere_date=None, end_year=None,
        tvdb_id=None, tmdb_id=None, imdb_id=None, episodes=(),
    )  # fmt: skip


def assert_safe(name: str, max_bytes: int = MAX_COMPONENT_BYTES) -> None:
    assert name not in ("", ".", "..")
    assert len(name.encode("utf-8")) <= max_bytes
    assert PurePosixPath(name).parts == (name,)
    assert PureWindowsPath(name).parts == (name,)
    assert not any(c in name for c in '<>:"/\\|?*\0')
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in name)
    assert name == name.strip(" .")


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Breaking Bad", "Breaking Bad"),
        ("Star Trek: The Next Generation", "Star Trek The Next Generation"),
        ('a/b\\c:d*e?f"g<h>i|j', "abcdefghij"),
        ("..", "Untitled"),
        (".", "Untitled"),
        ("../../etc/passwd", "etcpasswd"),
        (".hidden", "hidden"),
        ("  padded title ...  ", "padded title"),
        ("nul\0byte\x01and\x1fcontrols\x7f", "nul byte and controls"),
        ("tabs\tand\nnewlines", "tabs and newlines"),
        ("Squid Game 🦑🎮", "Squid Game 🦑🎮"),
        ("שטיסל", "שטיסל"),
        ("مسلسل عربي", "مسلسل عربي"),
        ("", "Untitled"),
        ("   ", "Untitled"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("Mr. Robot", "Mr. Robot"),
    ],
)
def test_hostile_titles(title: str, expected: str) -> None:
    assert safe_component(title) == expected
    assert_safe(safe_component(title))


def test_none_title_falls_back() -> None:
    assert safe_component(None) == "Untitled"


@pytest.mark.parametrize("unit", ["a", "é", "日", "🦑", "👨‍👩‍👧"])
def test_long_titles_are_capped_without_splitting_characters(unit: str) -> None:
    name = safe_component(unit * 1000)
    assert_safe(name)
    assert len(name.encode("utf-8")) > MAX_COMPONENT_BYTES - 8
    name.encode("utf-8").decode("utf-8")  # whole characters only


def test_folder_name_keeps_room_for_year_and_suffix() -> None:
    long = pick("s1", "x" * 1000, year=2008)
    name = series_folder_name(long, "abcdef12")
    assert_safe(name)
    assert name.endswith(" (2008) [abcdef12]")


def test_series_folder_name() -> None:
    assert series_folder_name(pick("1", "Breaking Bad", 2008)) == "Breaking Bad (2008)"
    assert series_folder_name(pick("1", "Breaking Bad", None)) == "Breaking Bad"
    assert series_folder_name(pick("1", "Old", 0)) == "Old"


def test_same_title_and_year_get_distinct_stable_names() -> None:
    a, b = pick("id-a", "The Office", 2005, rank=1), pick("id-b", "The Office", 2005, rank=2)
    names = series_folder_names([a, b])
    assert len(set(names.values())) == 2
    assert all(n.startswith("The Office (2005) [") for n in names.values())
    # Rank order does not matter, and a pick without a clash keeps the plain name.
    swapped = series_folder_names([pick("id-b", "The Office", 2005, 1), pick("id-a", "The Office", 2005, 2)])
    assert swapped == names
    assert series_folder_names([a]) == {"id-a": "The Office (2005)"}


def test_names_differing_only_in_case_or_forbidden_chars_clash() -> None:
    names = series_folder_names([pick("a", "Dark"), pick("b", "DARK"), pick("c", "Da:rk"), pick("d", "Other")])
    assert len({n.casefold() for n in names.values()}) == 4
    assert names["d"] == "Other (2008)"


def test_slug() -> None:
    assert slug("Breaking Bad") == "breaking-bad"
    assert slug("Amélie: Ça va?") == "amelie-ca-va"
    assert slug("🦑🎮") == "series"
    assert slug("") == "series"
    assert slug(None) == "series"
    assert len(slug("word " * 100)) <= 60


def test_season_and_episode_names() -> None:
    assert season_folder_name(0) == "Season 00"
    assert season_folder_name(1) == "Season 1"
    assert season_folder_name(12) == "Season 12"
    assert episode_stem("Breaking Bad", 1, 2) == "Breaking Bad - S01E02"
    assert episode_stem("Breaking Bad", 1, 1, 2) == "Breaking Bad - S01E01-E02"
    assert episode_stem("Breaking Bad", 1, 1, 1) == "Breaking Bad - S01E01"
    assert episode_stem("A: B", 0, 101) == "A B - S00E101"
    assert_safe(episode_stem("x" * 1000, 2147483647, 2147483647, 2147483647) + ".strm.nfo")


@given(st.text())
def test_property_single_safe_component(text: str) -> None:
    assert_safe(safe_component(text))


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=2000), st.integers(16, MAX_COMPONENT_BYTES))
def test_property_respects_max_bytes(text: str, max_bytes: int) -> None:
    assert_safe(safe_component(text, max_bytes), max_bytes)


@given(st.text(), st.one_of(st.none(), st.integers(-5, 20000)), st.text(min_size=1))
def test_property_paths_stay_inside_root(title: str, year: int | None, series_id: str) -> None:
    root = "/library/users/alice/ai-series"
    for name in (series_folder_name(pick(series_id, title, year)), episode_stem(title, 1, 1) + ".mkv", slug(title)):
        assert_safe(name)
        joined = os.path.normpath(os.path.join(root, name))
        assert os.path.dirname(joined) == root


@given(st.lists(st.tuples(st.text(max_size=8), st.sampled_from([None, 2000, 2001])), max_size=12))
def test_property_folder_names_are_unique(specs: list[tuple[str, int | None]]) -> None:
    picks = [pick(f"id{i}", title, year) for i, (title, year) in enumerate(specs)]
    names = series_folder_names(picks)
    assert len({n.casefold() for n in names.values()}) == len(picks)
    for n in names.values():
        assert_safe(n)
