"""Pure watch-history logic: enabled users, episode state merging and the series state table."""

import pytest

from aperture_assets.watch_rows import enabled_user_ids, episode_states, series_state

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
