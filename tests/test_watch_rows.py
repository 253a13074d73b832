"""Pure watch-history logic: enabled users, episode state merging and the series state table."""

from datetime import UTC, datetime

import pytest

from aperture_assets.logic.watch_rows import (
    enabled_user_ids,
    episode_states,
    merge_window,
    played_before,
    played_items,
    played_row,
    read_digest,
    series_state,
    stored_played,
    watch_states,
    watermark,
)
from aperture_resources.watch_store import PlayedItem

USERS = [
    {"Id": "u1", "Name": "Alice", "Policy": {"IsDisabled": False}},
    {"Id": "u2", "Name": "Bob", "Policy": {"IsDisabled": False}},
    {"Id": "u3", "Name": "Frank", "Policy": {"IsDisabled": True}},
    {"Id": "u4", "Name": "NoPolicy"},
]


def test_enabled_users_skip_disabled_and_honour_the_list_by_name_or_id():
    assert enabled_user_ids(USERS, []) == ["u1", "u2", "u4"]
    assert enabled_user_ids(USERS, ["alice", "U2"]) == ["u1", "u2"]
    assert enabled_user_ids(USERS, ["frank"]) == []


@pytest.mark.parametrize(
    ("watched", "available", "resuming", "status", "expected"),
    [
        (0, 10, False, "Ended", "not_started"),
        (3, 10, False, "Ended", "in_progress"),
        (0, 10, True, "Continuing", "in_progress"),
        (10, 10, False, "Ended", "completed"),
        (10, 10, False, "Continuing", "caught_up"),
        (10, 10, False, None, "caught_up"),
        (10, 10, True, "Ended", "in_progress"),  # rewatching the finale
        (12, 10, False, "ended", "completed"),
    ],
)
def test_series_state_table(watched, available, resuming, status, expected):
    assert series_state(watched, available, resuming, status) == expected


def test_episode_states_merge_and_ignore_own_picks_folder():
    items = [
        {"Id": "e1", "SeriesId": "s", "ParentIndexNumber": 1, "IndexNumber": 1,
         "UserData": {"Played": True, "PlayCount": 2, "LastPlayedDate": "2026-01-02T03:04:05.0000000Z"}},
        {"Id": "e2", "UserData": {"Played": False, "PlaybackPositionTicks": 100, "PlayedPercentage": 12.5}},
        {"Id": "e3", "UserData": {"Played": False}},  # no state at all: dropped
        {"Id": "p", "Path": "/picks/users/a/ai-series/X (2000)/Season 00/x-placeholder.strm",
         "UserData": {"Played": True}},
        {"UserData": {"Played": True}},  # malformed: no id
    ]
    states = episode_states(items, exclude_root="/picks")
    assert set(states) == {"e1", "e2"}
    assert states["e1"].play_count == 2 and states["e1"].last_played_at.year == 2026
    assert states["e2"].position_ticks == 100 and not states["e2"].played


def _played(item_id: str, when: str | None, path: str = "/media/tv/x.mkv", **data) -> dict:
    user_data = {"Played": True, "PlayCount": 1, **({"LastPlayedDate": when} if when else {}), **data}
    return {"Id": item_id, "Type": "Episode", "Path": path, "SeriesId": "s", "ParentIndexNumber": 1,
            "IndexNumber": int(item_id[1:]) if item_id[1:].isdigit() else None,
            "ProviderIds": {"Tvdb": "1"}, "UserData": user_data}


def test_played_items_keep_picks_items_flagged_and_the_watermark_is_the_newest_play():
    played = played_items([_played("e1", "2026-01-01T00:00:00Z"), _played("e2", "2026-03-01T00:00:00Z"),
                           _played("p", "2026-05-01T00:00:00Z", path="/picks/a/x.strm"), {"Id": True}],
                          exclude_root="/picks")
    assert set(played) == {"e1", "e2", "p"} and played["p"].excluded and not played["e1"].excluded
    assert watermark(played) == datetime(2026, 5, 1, tzinfo=UTC)  # picks items count: the server lists them
    assert watermark({}) is None
    assert played_before(_played("e1", "2026-01-01T00:00:00Z"), watermark(played))
    assert not played_before(_played("e9", "2026-05-01T00:00:00.0000000Z"), watermark(played))  # a tie is in W
    assert not played_before(_played("e9", None), watermark(played))


def test_merge_window_applies_only_when_the_count_proves_nothing_left():
    stored = played_items([_played("e1", "2026-01-01T00:00:00Z"), _played("e2", "2026-02-01T00:00:00Z")])
    window = played_items([_played("e2", "2026-04-01T00:00:00Z", PlayCount=2), _played("e3", "2026-04-02T00:00:00Z")])
    merged = merge_window(stored, window, total=3)
    assert merged is not None and set(merged) == {"e1", "e2", "e3"} and merged["e2"].play_count == 2
    assert merge_window(stored, window, total=2) is None  # e1 (or another) was un-marked: re-read in full
    assert merge_window(stored, window, total=4) is None  # a back-dated mark the window cannot see
    assert merge_window(stored, window, total=None) is None


def test_watch_states_from_a_played_set_equal_episode_states_over_the_raw_lists():
    played_raw = [_played("e1", "2026-01-01T00:00:00Z", IsFavorite=True), _played("e2", "2026-02-01T00:00:00Z"),
                  _played("p", "2026-02-01T00:00:00Z", path="/picks/x.strm")]
    resume = [{"Id": "e4", "UserData": {"Played": False, "PlaybackPositionTicks": 10}}]
    favorites = [_played("e1", "2026-01-01T00:00:00Z", IsFavorite=True)]
    direct = episode_states([*played_raw, *resume, *favorites], "/picks")
    played = played_items(played_raw, "/picks")
    assert watch_states(played, [*resume, *favorites], "/picks") == direct
    # through storage (favourite flags are never stored; they come from the favourites list)
    stored = {s.item_id: s for s in (stored_played(PlayedItem(*played_row(s))) for s in played.values())}
    assert watch_states(stored, [*resume, *favorites], "/picks") == direct
    assert watch_states(stored, resume, "/picks")["e1"].is_favorite is False  # un-favourited since


def test_the_read_digest_equals_through_storage_and_changes_with_anything_the_writes_use():
    played_raw = [_played("e1", "2026-01-01T00:00:00Z", path="/tv/a/e1.mkv"), _played("e2", "2026-02-01T00:00:00Z")]
    resume = [{"Id": "e4", "UserData": {"Played": False, "PlaybackPositionTicks": 10}}]
    series = [{"Id": "s1", "Type": "Series"}]
    played = played_items(played_raw, "/picks")
    digest = read_digest(played, resume, series, [], "/picks")
    # an incremental read rebuilds the set from storage (no paths, no favourite flags): the same digest
    stored = {s.item_id: s for s in (stored_played(PlayedItem(*played_row(s))) for s in played.values())}
    assert read_digest(stored, resume, series, [], "/picks") == digest
    assert read_digest(dict(reversed(played.items())), resume, series, [], "/picks") == digest  # order of the set
    replayed = played_items([_played("e1", "2026-03-01T00:00:00Z"), played_raw[1]], "/picks")
    moved = [{"Id": "e4", "UserData": {"Played": False, "PlaybackPositionTicks": 20}}]
    for changed in (read_digest(replayed, resume, series, [], "/picks"),       # played again
                    read_digest({"e1": played["e1"]}, resume, series, [], "/picks"),  # un-marked
                    read_digest(played, moved, series, [], "/picks"),          # resume position
                    read_digest(played, resume, [], [], "/picks"),             # un-favourited series
                    read_digest(played, resume, series, series, "/picks"),     # disliked
                    read_digest(played, resume, series, [], "/other")):        # another picks root
        assert changed != digest
