"""Pure catalog mapping: tolerant parsing and library selection."""

from datetime import UTC, date, datetime

import pytest

from aperture_assets.logic.catalog_rows import (
    episode_row,
    parse_datetime,
    provider_ids,
    select_tv_libraries,
    series_row,
    shrunken_libraries,
    unique_rows,
)
from aperture_resources.settings import ConfigError

FOLDERS = [
    {"Name": "TV Shows", "CollectionType": "tvshows", "ItemId": "a1", "Locations": ["/media/tv"]},
    {"Name": "Kids TV", "CollectionType": "tvshows", "ItemId": "a2", "Locations": ["/media/kids"]},
    {"Name": "Movies", "CollectionType": "movies", "ItemId": "a3", "Locations": ["/media/movies"]},
    {"Name": "alice's AI Picks - TV", "CollectionType": "tvshows", "ItemId": "a4",
     "Locations": ["/srv/aperture/users/alice/ai-series"]},
]


def test_parse_datetime_handles_dotnet_fractions_and_garbage():
    assert parse_datetime("2024-05-01T20:13:44.1234567Z") == datetime(2024, 5, 1, 20, 13, 44, 123456, tzinfo=UTC)
    assert parse_datetime("2024-05-01T20:13:44Z") == datetime(2024, 5, 1, 20, 13, 44, tzinfo=UTC)
    assert parse_datetime("not a date") is None
    assert parse_datetime(12) is None
    assert parse_datetime(None) is None


def test_provider_ids_are_case_insensitive():
    assert provider_ids({"ProviderIds": {"TVDB": "1", "tmdb": "2", "Imdb": "tt3"}}) == ("1", "2", "tt3")
    assert provider_ids({"ProviderIds": "broken"}) == (None, None, None)


def test_series_row_tolerates_missing_and_malformed_fields():
    row = series_row({"Id": "x", "Studios": [{"Name": "AMC"}, {"Name": "Sony"}, {"Bad": 1}],
                      "ProductionYear": "2008", "CommunityRating": "high", "Genres": ["Drama", 5],
                      "EndDate": "2013-09-29T00:00:00.0000000Z"}, "lib", None)
    assert row[0] == "x"
    assert row[2] == "Untitled series x"
    assert row[5] is None  # year given as a string is not trusted
    assert row[6] == 2013
    assert row[8] == ["Drama"]
    assert row[10:12] == ("AMC", ["AMC", "Sony"])
    assert row[14] is None


def test_episode_row_keeps_episodes_without_numbers():
    row = episode_row({"Id": "e", "SeriesId": "s", "PremiereDate": "2008-01-20T00:00:00.0000000Z"})
    assert row[3:6] == (None, None, None)
    assert row[7] == date(2008, 1, 20)


def test_unique_rows_skips_items_without_id_and_keeps_first_copy():
    rows, skipped = unique_rows([{"Id": "a", "Name": "1"}, {"Name": "no id"}, {"Id": "a", "Name": "2"}, "junk"],
                                lambda item: (item["Id"], item["Name"]))
    assert rows == [("a", "1")]
    assert skipped == 2


def test_select_tv_libraries_defaults_to_tvshows_and_skips_our_own_output():
    chosen = select_tv_libraries(FOLDERS, [], picks_root="/srv/aperture")
    assert [f["Name"] for f in chosen] == ["TV Shows", "Kids TV"]


def test_select_tv_libraries_by_name_is_case_insensitive_and_errors_name_the_variable():
    assert [f["Name"] for f in select_tv_libraries(FOLDERS, ["kids tv"])] == ["Kids TV"]
    with pytest.raises(ConfigError, match="APERTURE_TV_LIBRARIES names 'Anime'"):
        select_tv_libraries(FOLDERS, ["Anime"])
    with pytest.raises(ConfigError, match="no TV library"):
        select_tv_libraries(FOLDERS[2:3], [])


@pytest.mark.parametrize(("field", "value"), [("IndexNumber", 10**30), ("IndexNumber", -1), ("RunTimeTicks", 10**30),
                                              ("ParentIndexNumber", 1e39), ("IndexNumberEnd", float("inf"))])
def test_out_of_range_numbers_are_dropped_and_named(field: str, value: object) -> None:
    good = {"Id": "e1", "Type": "Episode", "Name": "Pilot", "SeriesId": "s1", "IndexNumber": 1,
            "ParentIndexNumber": 1, "RunTimeTicks": 12_000_000_000}
    problems: list[str] = []
    rows, skipped = unique_rows([{**good, field: value}, {**good, "Id": "e2"}], episode_row, problems)
    assert skipped == 0 and len(rows) == 2  # the bad value goes, the item and its neighbours stay
    column = {"ParentIndexNumber": 3, "IndexNumber": 4, "IndexNumberEnd": 5, "RunTimeTicks": 8}[field]
    assert rows[0] == tuple(None if i == column else v for i, v in enumerate(("e1", *rows[1][1:])))
    assert problems == [f"Episode e1 ('Pilot'): dropped out-of-range {field}={str(value)[:40]}"]


def test_text_is_valid_utf8_and_a_broken_item_is_skipped_not_fatal() -> None:
    lone = "Bad \ud800 title\x00"
    row = series_row({"Id": "s1", "Name": lone, "CommunityRating": 1e39, "ProductionYear": 2005}, "lib", None)
    assert row[2] == "Bad ? title" and row[2].encode("utf-8")
    assert row[14] is None and row[5] == 2005  # rating out of range dropped, year kept
    problems: list[str] = []

    def broken(item: dict) -> tuple:
        raise TypeError("unexpected shape")

    rows, skipped = unique_rows([{"Id": "x", "Name": "X"}], broken, problems)
    assert (rows, skipped) == ([], 1) and "item x ('X') skipped: TypeError" in problems[0]


def test_a_library_that_loses_most_of_its_series_at_once_is_suspicious() -> None:
    before = {"tv": 53, "kids": 7, "anime": 3}
    assert shrunken_libraries(before, {"tv": 53, "anime": 3}, 0.25) == ["kids"]  # read back empty
    assert shrunken_libraries(before, {"tv": 39, "kids": 7, "anime": 2}, 0.25) == ["tv"]  # lost 14 of 53
    assert shrunken_libraries(before, {"tv": 50, "kids": 7, "anime": 2}, 0.25) == []  # 3 of 53; 1 of 3 is news
    assert shrunken_libraries(before, {"tv": 39, "kids": 7, "anime": 3}, 0.5) == []  # a raised threshold
