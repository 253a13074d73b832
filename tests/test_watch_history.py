"""`series_watch_history` and the `media_users` sensor: real HTTP to the sample server, real PostgreSQL."""

import os
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from dagster import DagsterInstance, build_sensor_context, instance_for_test, materialize
from psycopg.conninfo import conninfo_to_dict

from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.defs.users.sensors import media_users_sensor
from aperture_assets.defs.watch_history.assets import FULL_READ_EVERY, full_read_reason, series_watch_history, sync_user
from aperture_assets.logic.watch_rows import is_under
from aperture_assets.wiring.dagster_internals import partition_range_tags
from aperture_assets.wiring.partitions import users_partitions
from aperture_resources import database as db
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server.base import MediaServerError
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.watch_store import CatalogVersion, WatchSync


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


def user_ids(server) -> dict[str, str]:
    return {u["Name"]: u["Id"] for u in server.state.users_json()}


def sync_catalog(resources):
    assert materialize([series_catalog], resources=resources).success


def sync_history(resources, instance: DagsterInstance, keys: list[str], raise_on_error=True):
    instance.add_dynamic_partitions(users_partitions.name, keys)
    tags = partition_range_tags(keys[0], keys[-1])
    return materialize([series_watch_history], resources=resources, instance=instance, tags=tags,
                       raise_on_error=raise_on_error)


def progress(sql, user_id: str) -> dict[str, tuple]:
    rows = sql("SELECT s.name, p.state, p.episodes_watched, p.episodes_available, p.max_play_count, p.is_favorite "
               "FROM series_progress p JOIN series s ON s.id = p.series_id WHERE p.user_id = %s", (user_id,))
    return {name: tuple(rest) for name, *rest in rows}


def test_states_for_every_case_in_the_sample_data(resources, sample_server, instance, sql):
    sync_catalog(resources)
    ids = user_ids(sample_server)
    result = sync_history(resources, instance, [ids["alice"], ids["bob"]])
    assert result.success
    alice = progress(sql, ids["alice"])
    assert alice["Breaking Bad"][0] == "completed"                     # every episode, Ended
    assert alice["The Wire"][0] == "in_progress" and 0 < alice["The Wire"][1] < alice["The Wire"][2]
    assert alice["Ozark"][0] == "in_progress" and alice["Ozark"][1] == 0  # only a resume position
    assert alice["The Sopranos"][0] == "completed" and alice["The Sopranos"][3] >= 2  # rewatch
    assert alice["Mindhunter"][0] == "not_started" and alice["Mindhunter"][4]       # favourite only
    bob = progress(sql, ids["bob"])
    assert bob["Severance"][0] == "caught_up"                           # every episode, Continuing


def test_unmarked_episode_becomes_unwatched_and_no_change_resync_changes_nothing(
        resources, sample_server, instance, sql):
    sync_catalog(resources)
    alice = user_ids(sample_server)["alice"]
    assert sync_history(resources, instance, [alice]).success
    again = sync_history(resources, instance, [alice])
    m = again.asset_materializations_for_node("series_watch_history")[0].metadata
    assert m["rows_changed"].value == 0

    episode = sql("SELECT e.id FROM episodes e JOIN series s ON s.id = e.series_id WHERE s.name = 'Breaking Bad' "
                  "AND e.season_number = 1 AND e.episode_number = 1")[0][0]
    sample_server.state.mark_played(alice, episode, False)
    assert sync_history(resources, instance, [alice]).success
    assert sql("SELECT count(*) FROM episode_watch_state WHERE user_id = %s AND episode_id = %s AND played",
               (alice, episode))[0][0] == 0
    assert progress(sql, alice)["Breaking Bad"][0] == "in_progress"


def test_a_5xx_mid_read_leaves_the_previous_state_intact(resources, sample_server, instance, sql):
    sync_catalog(resources)
    alice = user_ids(sample_server)["alice"]
    assert sync_history(resources, instance, [alice]).success
    before = sql("SELECT * FROM series_progress WHERE user_id = %s ORDER BY series_id", (alice,))
    episode = sql("SELECT episode_id FROM episode_watch_state WHERE user_id = %s AND played LIMIT 1", (alice,))[0][0]
    sample_server.state.mark_played(alice, episode, False)
    sample_server.fail_next("/UserItems/Resume", status=500, times=20)
    assert not sync_history(resources, instance, [alice], raise_on_error=False).success
    assert sql("SELECT * FROM series_progress WHERE user_id = %s ORDER BY series_id", (alice,)) == before


def test_backfill_over_several_users_is_one_run_and_isolates_failures(resources, sample_server, instance, sql):
    sync_catalog(resources)
    ids = user_ids(sample_server)
    keys = [ids[name] for name in ("alice", "bob", "carol", "dave")]
    result = sync_history(resources, instance, keys)
    assert result.success
    assert len(instance.get_runs()) == 1
    assert {r[0] for r in sql("SELECT DISTINCT user_id FROM series_progress")} == set(keys)
    kids = progress(sql, ids["dave"])
    assert any("Bluey" in name for name in kids)
    per_user = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert set(per_user) == set(keys)
    alice = per_user[ids["alice"]]
    assert alice["series_completed"].value >= 3 and alice["series_in_progress"].value >= 2
    assert "Breaking Bad" in alice["top_series"].value and "Bluey" not in alice["top_series"].value
    assert alice["run_users"].value == 4  # run totals ride along on every partition


def test_sensor_adds_and_removes_user_partitions(resources, sample_server, instance, sql):
    with build_sensor_context(instance=instance, resources=resources) as context:
        result = media_users_sensor(context)
    added = {key for req in result.dynamic_partitions_requests for key in req.partition_keys}
    assert "alice" in added and "frank" not in added  # keyed by name; frank is disabled
    assert sql("SELECT is_disabled FROM media_users WHERE name = 'frank'")[0][0] is True
    instance.add_dynamic_partitions(users_partitions.name, sorted(added))

    narrowed = {**resources, "pipeline": PipelineConfig(users="alice,bob")}
    with build_sensor_context(instance=instance, resources=narrowed) as context:
        result = media_users_sensor(context)
    removed = {key for req in result.dynamic_partitions_requests for key in req.partition_keys}
    assert removed == added - {"alice", "bob"}


# -- incremental read: always equal to a full re-read ----------------------------------------------------------

SNAPSHOT = {
    "episode_watch_state": "SELECT user_id, episode_id, played, play_count, last_played_at, position_ticks, "
                           "played_percentage, is_favorite FROM episode_watch_state",
    "series_favorites": "SELECT user_id, series_id FROM series_favorites",
    "series_progress": "SELECT user_id, series_id, episodes_watched, episodes_available, percent, max_play_count, "
                       "last_watched_at, is_favorite, state FROM series_progress",
    "user_played_items": "SELECT * FROM user_played_items",  # the stored set S itself must match too
}


def snapshot(database: DatabaseResource) -> dict[str, set[tuple]]:
    """Every watch table as a set of tuples, without our own updated_at."""
    with database.connect() as conn:
        return {table: set(conn.execute(query).fetchall()) for table, query in SNAPSHOT.items()}


@pytest.fixture
def clone_database(pg_server_url):
    """Copies of a database (CREATE DATABASE ... TEMPLATE), dropped at the end."""
    made: list[str] = []

    def clone(source: DatabaseResource) -> DatabaseResource:
        name = f"aperture_clone_{os.getpid()}_{len(made)}"
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            template = conninfo_to_dict(source.app_url())["dbname"]
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        made.append(name)
        url = db.with_database(pg_server_url, name)
        db._migrated.add(url)
        return DatabaseResource(url=url)

    yield clone
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sync(resources, database: DatabaseResource, user_id: str, root: str, full: bool = False) -> dict:
    with resources["media_server"].client() as client:
        return sync_user(client, database, user_id, root, full=full)


class Mutator:
    """Random user-data changes on the sample server, as people watch: plays (on a clock that moves forward,
    sometimes not at all), rewatches, un-marks, favourites on and off, resume positions."""

    def __init__(self, server, users: list[str], seed: int) -> None:
        self.state, self.users, self.rng = server.state, users, random.Random(seed)
        items = server.state.items.values()
        self.episodes = sorted(i.id for i in items if i.type == "Episode")
        self.series = sorted(i.id for i in items if i.type == "Series")
        self.clock = datetime(2027, 1, 1, tzinfo=UTC)
        self.done: Counter = Counter()

    def played(self, user: str) -> list[str]:
        return sorted(item for (uid, item), data in self.state.user_data.items() if uid == user and data.played)

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=self.rng.choice([0, 1, 60, 3600]))
        return self.clock

    def step(self) -> None:
        rng, user = self.rng, self.rng.choice(self.users)
        played = self.played(user)
        kind = rng.choice(["play", "play", "play", "rewatch", "unmark", "favorite", "series_favorite", "resume"])
        if kind in ("rewatch", "unmark") and not played:
            kind = "play"
        if kind == "play":
            for item in rng.sample(self.episodes, rng.randint(1, 3)):
                self.state.mark_played(user, item, True, self.tick())
        elif kind == "rewatch":
            self.state.mark_played(user, rng.choice(played), True, self.tick())
        elif kind == "unmark":
            self.state.mark_played(user, rng.choice(played), False)
        elif kind == "favorite":
            item = rng.choice(played if played and rng.random() < 0.5 else self.episodes)
            self.state.set_favorite(user, item, rng.random() < 0.6)
        elif kind == "series_favorite":
            self.state.set_favorite(user, rng.choice(self.series), rng.random() < 0.6)
        else:  # a position on any episode, played ones included (which un-marks them)
            item = rng.choice(played if played and rng.random() < 0.3 else self.episodes)
            runtime = self.state.items[item].base.get("RunTimeTicks") or 10**10
            self.state.set_position(user, item, int(runtime * rng.uniform(0.1, 0.9)))
        self.done[kind] += 1


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_sync_always_equals_a_fresh_full_read(resources, sample_server, database, clone_database, seed):
    sync_catalog(resources)
    catalog_only = clone_database(database)  # the catalog, no watch state: what each reference starts from
    ids = user_ids(sample_server)
    users = [ids[name] for name in ("alice", "bob", "carol", "dave", "kate")]
    root = "/media/kids"  # stands in for the picks root: played items there are counted but never watch rows
    for user in users:
        assert sync(resources, database, user, root)["read"] == "full"  # the synced starting state
    mutator, reads = Mutator(sample_server, users, seed), Counter()
    for round_ in range(8):
        for _ in range(mutator.rng.choice([0, 1, 3, 8])):
            mutator.step()
        for user in users:
            result = sync(resources, database, user, root)
            reads[result["read"]] += 1
            assert result["requests"] <= (4 if result["read"] == "incremental" else 10)
        reference = clone_database(catalog_only)
        for user in users:
            assert sync(resources, reference, user, root, full=True)["read"] == "full"
        assert snapshot(database) == snapshot(reference), f"round {round_} after {dict(mutator.done)}"
    # the run exercised both paths and every kind of change
    assert reads["incremental"] >= 10 and reads["full"] >= 2, reads
    assert set(mutator.done) >= {"play", "rewatch", "unmark", "favorite", "series_favorite", "resume"}


def test_an_unmark_forces_the_full_read_and_a_backdated_mark_alone_is_caught(resources, sample_server, sql):
    sync_catalog(resources)
    alice = user_ids(sample_server)["alice"]
    assert sync(resources, resources["database"], alice, "")["read"] == "full"
    played = sql("SELECT item_id FROM user_played_items WHERE user_id = %s ORDER BY item_id", (alice,))
    sample_server.state.mark_played(alice, played[0][0], False)
    result = sync(resources, resources["database"], alice, "")
    assert result["read"] == "full" and "left the played set" in result["read_reason"]
    assert sql("SELECT count(*) FROM user_played_items WHERE user_id = %s", (alice,))[0][0] == len(played) - 1

    # a play dated before the watermark (an imported history) is not in the window, but the count sees it
    unwatched = sql("SELECT e.id FROM episodes e WHERE NOT EXISTS (SELECT 1 FROM user_played_items p "
                    "WHERE p.user_id = %s AND p.item_id = e.id) ORDER BY e.id LIMIT 1", (alice,))[0][0]
    sample_server.state.mark_played(alice, unwatched, True, datetime(2001, 1, 1, tzinfo=UTC))
    result = sync(resources, resources["database"], alice, "")
    assert result["read"] == "full"
    assert sql("SELECT played FROM episode_watch_state WHERE user_id = %s AND episode_id = %s",
               (alice, unwatched)) == [(True,)]


def test_a_no_change_resync_is_incremental_cheap_and_writes_nothing(resources, sample_server, instance, sql):
    sync_catalog(resources)
    alice = user_ids(sample_server)["alice"]
    first = sync_history(resources, instance, [alice]).asset_materializations_for_node("series_watch_history")[0]
    assert first.metadata["read"].value == "full"
    sync_row = sql("SELECT * FROM user_watch_sync WHERE user_id = %s", (alice,))
    again = sync_history(resources, instance, [alice]).asset_materializations_for_node("series_watch_history")[0]
    m = again.metadata
    assert m["read"].value == "incremental" and m["http_requests"].value <= 4  # window, resume, favourites, dislikes
    assert m["rows_changed"].value == 0 and m["read_unchanged"].value  # the digest matched: remap and writes skipped
    assert sql("SELECT * FROM user_watch_sync WHERE user_id = %s", (alice,)) == sync_row  # not even bookkeeping
    assert m["episodes_watched"].value == first.metadata["episodes_watched"].value  # figures read from the store
    assert m["series_completed"].value == first.metadata["series_completed"].value

    # a change outside the played set (a favourite series) changes the digest: written, not skipped
    series = sql("SELECT id FROM series s WHERE NOT EXISTS (SELECT 1 FROM series_favorites f "
                 "WHERE f.user_id = %s AND f.series_id = s.id) ORDER BY id LIMIT 1", (alice,))[0][0]
    sample_server.state.set_favorite(alice, series)
    m = sync_history(resources, instance, [alice]).asset_materializations_for_node("series_watch_history")[0].metadata
    assert not m["read_unchanged"].value and m["rows_changed"].value > 0
    assert sql("SELECT 1 FROM series_favorites WHERE user_id = %s AND series_id = %s", (alice, series)) == [(1,)]

    # a new play: still incremental, and it lands
    episode = sql("SELECT e.id FROM episodes e WHERE NOT EXISTS (SELECT 1 FROM episode_watch_state w "
                  "WHERE w.user_id = %s AND w.episode_id = e.id) ORDER BY e.id LIMIT 1", (alice,))[0][0]
    sample_server.state.mark_played(alice, episode, True)
    m = sync_history(resources, instance, [alice]).asset_materializations_for_node("series_watch_history")[0].metadata
    assert m["read"].value == "incremental" and m["rows_changed"].value > 0
    assert sql("SELECT played FROM episode_watch_state WHERE user_id = %s AND episode_id = %s",
               (alice, episode)) == [(True,)]


def test_plays_under_the_picks_root_skip_the_writes_and_keep_the_played_set_exact(resources, sample_server,
                                                                                 database, sql):
    """aperture marks its own placeholders played: that must not send every user down the write path."""
    sync_catalog(resources)
    alice, root = user_ids(sample_server)["alice"], "/media/kids"  # kids stands in for the picks root
    assert sync(resources, database, alice, root)["read"] == "full"
    assert sync(resources, database, alice, root)["read_unchanged"]
    watch_rows = sql("SELECT * FROM episode_watch_state WHERE user_id = %s ORDER BY episode_id", (alice,))
    placeholders = sorted(i.id for i in sample_server.state.items.values()
                          if i.type == "Episode" and is_under(i.extra.get("Path") or i.base.get("Path"), root))[:3]
    assert placeholders
    for item in placeholders:
        sample_server.state.mark_played(alice, item, True)
    result = sync(resources, database, alice, root)
    assert result["read"] == "incremental" and result["read_unchanged"]
    assert result["rows_changed"] == len(placeholders)  # the played set, stored for the next count check
    assert sql("SELECT * FROM episode_watch_state WHERE user_id = %s ORDER BY episode_id", (alice,)) == watch_rows
    stored = {item for (item,) in sql("SELECT item_id FROM user_played_items WHERE user_id = %s AND excluded",
                                      (alice,))}
    assert set(placeholders) <= stored
    again = sync(resources, database, alice, root)  # the stored set is exact: still incremental, nothing to do
    assert again["read"] == "incremental" and again["read_unchanged"] and again["rows_changed"] == 0


def test_a_5xx_mid_window_read_leaves_the_previous_state_intact(resources, sample_server, database, monkeypatch):
    sync_catalog(resources)
    alice = user_ids(sample_server)["alice"]
    assert sync(resources, database, alice, "")["read"] == "full"
    state = sample_server.state
    known = {item for (uid, item), data in state.user_data.items() if uid == alice and data.played}
    fresh = sorted(i.id for i in state.items.values() if i.type == "Episode" and i.id not in known)[:70]
    for n, item in enumerate(fresh):  # more new plays than the window's first page holds
        state.mark_played(alice, item, True, datetime(2027, 1, 1, tzinfo=UTC) + timedelta(minutes=n))
    before = snapshot(database)
    with database.connect() as conn:
        sync_before = conn.execute("SELECT * FROM user_watch_sync").fetchall()

    handle, pages = sample_server._handle, Counter()

    def failing_second_page(method, path, query, headers, body):
        if path == "/Items" and (query.get("sortOrder") or "").startswith("Desc"):
            pages[query.get("startIndex")] += 1
            if query.get("startIndex") not in (None, "0"):
                return 500, "injected failure"
        return handle(method, path, query, headers, body)

    monkeypatch.setattr(sample_server, "_handle", failing_second_page)
    with pytest.raises(MediaServerError):
        sync(resources, database, alice, "")
    assert pages["0"] == 1 and sum(pages.values()) > 1  # the first window page was read, then the next failed
    assert snapshot(database) == before
    with database.connect() as conn:
        assert conn.execute("SELECT * FROM user_watch_sync").fetchall() == sync_before

    monkeypatch.setattr(sample_server, "_handle", handle)
    result = sync(resources, database, alice, "")
    assert result["read"] == "incremental"
    assert {(alice, item) for item in fresh} <= {(u, i) for u, i, *_ in snapshot(database)["user_played_items"]}


def test_a_catalog_change_alone_still_rederives_progress_on_the_incremental_path(resources, sample_server, instance,
                                                                                  sql):
    sync_catalog(resources)
    alice = user_ids(sample_server)["alice"]
    assert sync_history(resources, instance, [alice]).success
    assert progress(sql, alice)["Breaking Bad"][0] == "completed"
    season = sql("SELECT e.season_id, max(e.episode_number) FROM episodes e JOIN series s ON s.id = e.series_id "
                 "WHERE s.name = 'Breaking Bad' GROUP BY e.season_id ORDER BY 1 LIMIT 1")[0]
    sample_server.state.add_episode(season[0], season[1] + 1)  # a new episode: nothing about alice changed
    sync_catalog(resources)
    m = sync_history(resources, instance, [alice]).asset_materializations_for_node("series_watch_history")[0].metadata
    assert m["read"].value == "incremental"
    state, watched, available, *_ = progress(sql, alice)["Breaking Bad"]
    assert state == "in_progress" and available == watched + 1


def test_full_read_reasons():
    now = datetime(2027, 1, 2, tzinfo=UTC)
    catalog = CatalogVersion("removals-1", "version-1")
    synced = WatchSync("/picks", now - timedelta(hours=2), "removals-1", "version-0")
    assert full_read_reason(None, "/picks", now, catalog) == "no previous sync"
    assert full_read_reason(synced, "/picks", now, catalog) is None  # a changed catalog alone is fine
    assert full_read_reason(synced, "/other", now, catalog) == "the picks root changed"
    assert full_read_reason(synced, "/picks", now + FULL_READ_EVERY, catalog) == "periodic full read"
    assert full_read_reason(synced, "/picks", now, CatalogVersion("removals-2", "version-1")) \
        == "the catalog removed episodes"
