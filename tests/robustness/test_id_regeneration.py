"""A library re-import gives every series, season and episode a new item id (provider ids and numbers stay):
watch history survives, old rows are marked removed (never deleted), new ones are active, picks stay the same.
The prior tool deleted and re-inserted such episodes and lost their history meanwhile."""

import pytest

from tests.robustness.helpers import STAGES, failure_messages

DATA_STAGES = STAGES[:4]


def by_show(database) -> dict[str, object]:
    """Everything a user's watching amounts to, keyed by what survives a re-import (library + show provider
    id + season/episode numbers), not by item id."""
    with database.connect() as conn:
        episodes = conn.execute(
            "SELECT w.user_id, l.name, coalesce(s.tvdb_id, s.tmdb_id, s.imdb_id, s.name), e.season_number, "
            "e.episode_number, w.played, w.play_count, w.last_played_at, w.position_ticks, w.is_favorite "
            "FROM episode_watch_state w JOIN episodes e ON e.id = w.episode_id JOIN series s ON s.id = e.series_id "
            "JOIN libraries l ON l.id = s.library_id").fetchall()
        progress = conn.execute(
            "SELECT p.user_id, l.name, coalesce(s.tvdb_id, s.tmdb_id, s.imdb_id, s.name), p.episodes_watched, "
            "p.episodes_available, p.percent, p.max_play_count, p.last_watched_at, p.is_favorite, p.state "
            "FROM series_progress p JOIN series s ON s.id = p.series_id "
            "JOIN libraries l ON l.id = s.library_id").fetchall()
        favorites = conn.execute(
            "SELECT f.user_id, s.name, l.name FROM series_favorites f JOIN series s ON s.id = f.series_id "
            "JOIN libraries l ON l.id = s.library_id").fetchall()
        picks = conn.execute(
            "SELECT r.user_id, r.rank, s.name, l.name FROM latest_recommendations r "
            "JOIN series s ON s.id = r.series_id JOIN libraries l ON l.id = s.library_id").fetchall()
    return {"episodes": sorted(episodes, key=repr), "progress": sorted(progress, key=repr),
            "favorites": sorted(favorites), "picks": sorted(picks)}


def without_library(rows: list[tuple]) -> list[tuple]:
    return [tuple(v for v in row if v not in ("TV Shows", "Kids TV")) for row in rows]


def ids(database, table: str, removed: bool) -> set[str]:
    with database.connect() as conn:
        return {r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE (removed_at IS NOT NULL) = %s",
                                           (removed,))}


@pytest.mark.parametrize("order", ["catalog_first", "history_first"])
def test_regenerated_ids_keep_every_users_history(make_world, clean_run, order):
    world = make_world(template=clean_run.db_name)
    before = by_show(world.database)
    assert before["episodes"] and before["progress"] and before["favorites"]
    old = {t: ids(world.database, t, removed=False) for t in ("series", "seasons", "episodes")}

    mapping = world.server.state.regenerate_ids()
    assert set(mapping) >= old["episodes"] | old["series"]
    if order == "history_first":  # the hourly history sync meets the new ids before the daily catalog sync
        results = world.run(("history",))
        assert results["history"].success, failure_messages(results)
        # Every play is kept, mapped by provider ids + numbers onto the still-active old rows, and onto the copy
        # holding the same file when a show is in two libraries.
        interim = by_show(world.database)["episodes"]
        assert sorted(interim) == sorted(before["episodes"])
    results = world.run(DATA_STAGES)
    assert all(r.success for r in results.values()) and len(results) == 4, failure_messages(results)

    after = by_show(world.database)
    assert after["episodes"] == before["episodes"]
    assert after["progress"] == before["progress"]
    assert after["favorites"] == before["favorites"]
    # the same shows in the same ranks; for a show held in two libraries either copy may be the one picked
    assert sorted(without_library(after["picks"])) == sorted(without_library(before["picks"]))
    for table in ("series", "seasons", "episodes"):
        assert ids(world.database, table, removed=True) == old[table]  # kept, marked removed
        assert ids(world.database, table, removed=False) == {mapping[i] for i in old[table]}
    with world.database.connect() as conn:
        stale = conn.execute("SELECT count(*) FROM episode_watch_state w JOIN episodes e ON e.id = w.episode_id "
                             "WHERE e.removed_at IS NOT NULL").fetchone()[0]
    assert stale == 0  # history follows the new ids rather than pointing at removed rows
