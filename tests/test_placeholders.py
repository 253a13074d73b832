"""Sorting placeholders are confirmed played per placeholder, by path, never by a count: the issue's scenario
(a user watched their top pick, five new picks came in, the previous scan's played placeholders were still
listed right after the rescan) against the sample server over real HTTP with real PostgreSQL; a scan that has
not happened yet leaves placeholders pending for the `library_placeholders` sensor or the next run; the check
warns while one waits more than a day. Unit tests pin `mark_placeholders` and the pending file."""

import copy
import json
import threading
import time
import uuid
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import psycopg
import pytest
from aperture_dev.sample_server import SampleServer
from dagster import AssetCheckSeverity, build_sensor_context, instance_for_test, materialize

from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.defs.library import assets as library_assets
from aperture_assets.defs.library.assets import series_library
from aperture_assets.defs.library.checks import placeholders_confirmed_within_a_day
from aperture_assets.defs.library.sensors import library_placeholders
from aperture_assets.wiring.dagster_internals import partition_range_tags
from aperture_assets.wiring.partitions import users_partitions
from aperture_resources.database import DatabaseResource, with_database
from aperture_resources.library.cleanup import PLACEHOLDER_MARKER
from aperture_resources.library.resource import LibraryResource
from aperture_resources.library.server_sync import (
    PLACEHOLDER_SUFFIX,
    PendingPlaceholders,
    listed_placeholders,
    mark_placeholders,
)
from aperture_resources.media_server import IncompleteReadError
from aperture_resources.pipeline_config import PipelineConfig
from tests.conftest import media_resource

WRITES = {"POST", "DELETE"}


# -- the pipeline against the sample server ----------------------------------------------------------------------
@pytest.fixture(scope="module", params=["jellyfin", "emby"])
def world(request, pg_server_url, template_db, sample_data):
    """The catalog of a sample server in one flavour, in its own database; alice and bob as partitions."""
    name = f"aperture_placeholders_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    database = DatabaseResource(url=with_database(pg_server_url, name))
    server = SampleServer(copy.deepcopy(sample_data), mode=request.param, api_key="test-key").start()
    ids = {u["Name"]: u["Id"] for u in server.state.users_json() if u["Name"] in ("alice", "bob")}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(users_partitions.name, sorted(ids.values()))
        resources = {"media_server": media_resource(server), "database": database, "pipeline": PipelineConfig()}
        assert materialize([series_catalog], resources=resources, instance=instance).success
        with database.connect() as conn:
            series = [r[0] for r in conn.execute("SELECT s.id FROM series s JOIN libraries l ON l.id = s.library_id "
                                                 "WHERE l.name = 'TV Shows' ORDER BY s.name, s.id")]
        yield SimpleNamespace(mode=request.param, instance=instance, ids=ids, database=database, series=series)
    server.stop()
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def env(world, sample_data, tmp_path, monkeypatch):
    """A fresh recording server and library root; alice picks series 0-11, bob 20-31. Polls are fast here."""
    monkeypatch.setattr(library_assets, "PLACEHOLDER_POLL_SECONDS", 0.2)
    monkeypatch.setattr(library_assets, "PLACEHOLDER_WAIT_SECONDS", 1.0)
    server = SampleServer(copy.deepcopy(sample_data), mode=world.mode, api_key="test-key", record=True).start()
    with world.database.connect() as conn:
        last_run = conn.execute("SELECT coalesce(max(id), 0) FROM recommendation_runs").fetchone()[0]
    media = media_resource(server)
    library = LibraryResource(media_server=media, root=str(tmp_path / "libraries"))
    env = SimpleNamespace(world=world, server=server, library=library, ids=world.ids, series=world.series,
                          resources={"media_server": media, "database": world.database, "pipeline": PipelineConfig(),
                                     "library": library})
    insert_picks(env, "alice", world.series[:12])
    insert_picks(env, "bob", world.series[20:32])
    yield env
    server.stop()
    with world.database.connect() as conn:
        conn.execute("DELETE FROM recommendation_runs WHERE id > %s", (last_run,))
        conn.execute("DELETE FROM picks_libraries")
        conn.execute("DELETE FROM user_access")
        conn.commit()


def insert_picks(env, name: str, series_ids: list[str]) -> None:
    with env.world.database.connect() as conn:
        run_id = conn.execute("INSERT INTO recommendation_runs (user_id, model, parameters) VALUES (%s, 'test', '{}') "
                              "RETURNING id", (env.ids[name],)).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO recommendations (run_id, rank, series_id, score, components, evidence) "
                            "VALUES (%s, %s, %s, 1, '{}', '[]')",
                            [(run_id, rank, sid) for rank, sid in enumerate(series_ids, start=1)])
        conn.commit()


def run(env, *checks):
    env.server.reset_counters()
    keys = sorted(env.ids.values())
    result = materialize([series_library, *checks], instance=env.world.instance, resources=env.resources,
                         tags=partition_range_tags(keys[0], keys[-1]))
    assert result.success
    return result


def user_meta(result, name: str, env) -> dict:
    events = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
    return {k: v.value for k, v in events[env.ids[name]].items()}


def store(env, name: str) -> PendingPlaceholders:
    folder = env.library.user_folder(env.ids[name], name)
    return PendingPlaceholders(env.library.local_path(folder), env.library.server_path(folder))


def library_id(env, name: str) -> str:
    path = store(env, name).server_path
    return next(f["ItemId"] for f in env.server.state.folders if path in f["Locations"])


def listed(env, name: str) -> dict[str, bool]:
    """{path: played for that user} of every placeholder the server lists in the user's library (its API)."""
    with media_resource(env.server).client() as client:
        found = listed_placeholders(client, env.ids[name], library_id(env, name))
    return {path: all((i.get("UserData") or {}).get("Played") for i in items) for path, items in found.items()}


def scan_later(env, monkeypatch, delay: float | None) -> list:
    """Make the server scan asynchronously: a refresh is answered at once and the scan runs `delay` seconds later
    (None: not until the test calls the returned list's scans). Returns the deferred scans."""
    state, real = env.server.state, env.server.state.refresh
    deferred = []

    def scan(item_id: str) -> None:
        with state.lock:
            real(item_id)

    def refresh(item_id: str) -> bool:
        if delay is None:
            deferred.append(lambda: scan(item_id))
        else:
            threading.Timer(delay, scan, (item_id,)).start()
        return True

    monkeypatch.setattr(state, "refresh", refresh)
    return deferred


def watch_top_pick(env, name: str) -> None:
    """The user watches every episode of their top pick in their picks library."""
    top = sorted(p for p in store(env, name).tree.iterdir())[0]  # any pick will do; the was the top one
    lib = library_id(env, name)
    episodes = [i for i in env.server.state.items.values() if i.library_id == lib and i.type == "Episode"
                and i.extra["Path"].startswith(f"{store(env, name).server_path}/{top.name}/")
                and not i.extra["Path"].endswith(PLACEHOLDER_SUFFIX)]
    assert episodes
    for item in episodes:
        env.server.state.mark_played(env.ids[name], item.id)


def marks_after_rescan(env, changed: int) -> int:
    """Marks a rescan calls for: the changed placeholders on Jellyfin (ids follow paths, played state stays); every
    placeholder on the sample Emby, whose rescan gives every item a new id (the unchanged ones are marked again
    because they are listed unplayed, not because they were pending)."""
    return changed if env.world.mode == "jellyfin" else 12


def new_picks(env) -> list[str]:
    """Alice's next picks: her top pick gone, ranks moved up, five new series."""
    return env.series[1:8] + env.series[12:17]


def test_new_placeholders_are_marked_played_while_the_old_played_ones_are_still_listed(env, monkeypatch):
    first = run(env)
    s = store(env, "alice")
    assert user_meta(first, "alice", env)["placeholders_pending"] == 0 and not s.file.exists()
    before = listed(env, "alice")
    assert len(before) == 12 and all(before.values()) and set(before) == set(s.on_disk())
    watch_top_pick(env, "alice")
    insert_picks(env, "alice", new_picks(env))
    scan_later(env, monkeypatch, delay=0.3)  # right after the refresh the previous scan's 12 are listed, played

    second = run(env)
    meta = user_meta(second, "alice", env)
    now = listed(env, "alice")
    assert set(now) == set(s.on_disk()) and len(now) == 12 and len(set(now) - set(before)) == 5
    assert all(now.values()), sorted(p for p, played in now.items() if not played)  # every one, by its path
    assert meta["refreshed"] and meta["placeholders_pending"] == 0
    assert meta["placeholders_marked"] == marks_after_rescan(env, 5)
    assert 0 < meta["scan_wait_seconds"] <= library_assets.PLACEHOLDER_WAIT_SECONDS  # it waited for the scan
    assert second.get_asset_materialization_events()[0].materialization.metadata["run_scan_wait_seconds"].value > 0
    assert not s.file.exists()
    bob = {p: played for p, played in listed(env, "bob").items()}
    assert len(bob) == 12 and all(bob.values())
    for path in now:  # marked for alice only
        item = next(i for i in env.server.state.items.values() if i.extra.get("Path") == path)
        assert not env.server.state.data_for(env.ids["bob"], item.id).played

    third = run(env)  # nothing changed: no request writes anything, nothing is pending
    assert [r for r in env.server.requests if r.method in WRITES] == []
    assert user_meta(third, "alice", env)["placeholders_pending"] == 0


@pytest.mark.parametrize("finisher", ["sensor", "next run"])
def test_placeholders_the_scan_has_not_reached_stay_pending_until_the_sensor_or_the_next_run(env, monkeypatch,
                                                                                            finisher):
    run(env)
    s = store(env, "alice")
    before = set(listed(env, "alice"))
    insert_picks(env, "alice", new_picks(env))
    scans = scan_later(env, monkeypatch, delay=None)  # the server has not scanned yet when the run ends

    started = time.perf_counter()
    second = run(env)
    meta = user_meta(second, "alice", env)
    new = set(s.on_disk()) - before
    assert len(new) == 5
    assert meta["placeholders_pending"] == meta["placeholders_not_found"] == 5 and meta["placeholders_marked"] == 0
    assert set(s.load()) == new  # recorded by path, not deleted
    assert meta["scan_wait_seconds"] <= library_assets.PLACEHOLDER_WAIT_SECONDS < time.perf_counter() - started + 1
    run_meta = second.get_asset_materialization_events()[0].materialization.metadata
    assert run_meta["run_placeholders_pending"].value == 5
    assert run_meta["run_users_with_pending_placeholders"].value == [env.ids["alice"]]

    for scan in scans:
        scan()  # the server's scan finishes after the run
    assert not any(listed(env, "alice")[p] for p in new)
    if finisher == "sensor":
        with build_sensor_context(instance=env.world.instance, resources=env.resources) as context:
            outcome = library_placeholders(context)
        assert f"{marks_after_rescan(env, 5)} marked played, 5 confirmed, 0 still pending" in outcome.skip_message
    else:
        third = run(env)
        meta = user_meta(third, "alice", env)
        assert not meta["refreshed"] and meta["placeholders_pending"] == 0
        assert meta["placeholders_marked"] == marks_after_rescan(env, 5)
    now = listed(env, "alice")
    assert set(now) == set(s.on_disk()) and all(now.values())
    assert not s.file.exists()


@pytest.mark.parametrize("world", ["jellyfin"], indirect=True)
def test_the_check_warns_while_a_placeholder_waits_more_than_a_day(env, monkeypatch):
    scans = scan_later(env, monkeypatch, delay=None)
    first = run(env, placeholders_confirmed_within_a_day)
    check = first.get_asset_check_evaluations()[0]
    assert check.passed and check.metadata["users_with_pending"].value == 2  # pending, but not for long
    s = store(env, "alice")
    pending = s.load()
    assert len(pending) == 12
    old = {path: since - 2 * 86400 for path, since in pending.items()}
    s.file.write_text(json.dumps({"version": 1, "pending": old}))

    second = run(env, placeholders_confirmed_within_a_day)
    check = second.get_asset_check_evaluations()[0]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["users_late"].value == [s.tree.parent.name] and "alice" in check.description
    assert user_meta(second, "alice", env)["placeholders_oldest_pending_seconds"] > 2 * 86400 - 60

    for scan in scans:
        scan()
    third = run(env, placeholders_confirmed_within_a_day)
    assert third.get_asset_check_evaluations()[0].passed
    assert all(listed(env, "alice").values()) and not s.file.exists()


# -- mark_placeholders and the pending file, without a server ------------------------------------------------------
class FakeServer:
    """Lists `listings` in turn (the last one stays); marks stick unless `sticky` is False."""

    def __init__(self, listings: list[list[dict]], sticky: bool = True) -> None:
        self.listings, self.sticky, self.marked, self.reads = listings, sticky, [], 0

    def user_items(self, *args, **kwargs) -> list[dict]:
        self.reads += 1
        listing = self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]
        if isinstance(listing, Exception):
            raise listing
        return [{**i, "UserData": {"Played": i["UserData"]["Played"] or (self.sticky and i["Id"] in self.marked)}}
                for i in listing]

    def mark_played(self, user_id: str, item_id: str) -> None:
        self.marked.append(item_id)


def item(item_id: str, name: str, played: bool = False) -> dict:
    return {"Id": item_id, "Path": f"/lib/{name}/Season 00/{name}{PLACEHOLDER_SUFFIX}", "UserData": {"Played": played}}


def path(name: str) -> str:
    return item("", name)["Path"]


def test_a_pending_placeholder_is_confirmed_by_its_path_never_by_a_count():
    old = [item(f"o{i}", f"old{i}", played=True) for i in range(12)]  # the previous scan's, all played
    scanned = [*old[:7], item("n1", "new1"), item("n2", "new2")]
    server = FakeServer([old, old, scanned])
    sleeps = []
    sync = mark_placeholders(server, "u", "lib", {path("new1"): 1.0, path("new2"): 2.0}, polls=5, poll_seconds=1,
                             budget_seconds=10, sleep=sleeps.append)
    assert sync.marked == 2 and sorted(server.marked) == ["n1", "n2"] and sync.pending == {}
    assert sorted(sync.confirmed) == [path("new1"), path("new2")] and sleeps == [1, 1] and sync.waited == 2
    assert server.reads == 4  # three polls and the re-read that confirmed the marks


def test_a_mark_that_does_not_stick_and_a_scan_that_does_not_come_stay_pending_within_the_budget():
    ignored = FakeServer([[item("n1", "new1")]], sticky=False)
    sleeps = []
    sync = mark_placeholders(ignored, "u", "lib", {path("new1"): 5.0, path("new2"): 6.0}, polls=10, poll_seconds=1,
                             budget_seconds=3, sleep=sleeps.append)
    assert sync.pending == {path("new1"): 5.0, path("new2"): 6.0} and sync.confirmed == ()
    assert sync.not_found == 1 and sleeps == [1, 1, 1] and sync.waited == 3  # the budget, not the polls, ended it
    once = mark_placeholders(FakeServer([[]]), "u", "lib", {path("new1"): 5.0}, sleep=sleeps.append)
    assert once.pending == {path("new1"): 5.0} and once.waited == 0 and sleeps == [1, 1, 1]  # one look, no wait


def test_an_incomplete_read_and_a_second_item_at_the_same_path_are_not_taken_for_played():
    twice = [item("a", "new1", played=True), item("b", "new1")]
    server = FakeServer([IncompleteReadError("changed during the read"), twice])
    sync = mark_placeholders(server, "u", "lib", {path("new1"): 1.0}, polls=2, poll_seconds=0, budget_seconds=1,
                             sleep=lambda s: None)
    assert server.marked == ["b"] and sync.confirmed == (path("new1"),)
    stray = FakeServer([[item("s", "stray")]])  # an unplayed placeholder nobody recorded (an older version's)
    assert mark_placeholders(stray, "u", "lib", {path("x"): 1.0}).marked == 1 and stray.marked == ["s"]


def placeholder_tree(root: Path, names: list[str]) -> PendingPlaceholders:
    tree = root / "users" / "alice [abc]" / "ai-series"
    for name in names:
        (tree / name / "Season 00").mkdir(parents=True)
        (tree / name / "Season 00" / f"{name}{PLACEHOLDER_SUFFIX}").write_text("http://aperture.invalid/placeholder\n")
        (tree / name / "Season 00" / f"{name} - S00E01.mkv").write_text("")
    return PendingPlaceholders(tree, "/srv/users/alice [abc]/ai-series")


def test_the_pending_file_keeps_each_path_and_its_time_and_merges_updates(tmp_path):
    s = placeholder_tree(tmp_path, ["a", "b", "c"])
    rel = {n: PurePosixPath(n, "Season 00", f"{n}{PLACEHOLDER_SUFFIX}") for n in "abcd"}
    assert s.on_disk() == [s.server_path_of(rel[n]) for n in "abc"]
    assert s.record_write(list(rel.values())[:3], ["a", "b"]) == {s.server_path_of(rel["a"]): pytest.approx(
        time.time(), abs=5), s.server_path_of(rel["b"]): pytest.approx(time.time(), abs=5)}
    assert s.file == s.tree.parent / PLACEHOLDER_MARKER and json.loads(s.file.read_text())["version"] == 1
    since = s.load()[s.server_path_of(rel["a"])]
    snapshot = s.load()  # the sensor reads, then a run adds "c" while the sensor talks to the server
    s.update(add=[s.server_path_of(rel["c"])], now=since + 100)
    left = s.update(remove=[s.server_path_of(rel["a"])])  # the sensor confirmed "a" only
    assert set(snapshot) != set(left) and set(left) == {s.server_path_of(rel[n]) for n in "bc"}
    # "b" left the picks, "c" changed, "a" is unchanged: "b" is dropped and "a" keeps its time
    s.update(add=[s.server_path_of(rel["a"])], now=since - 1)
    assert s.record_write([rel["a"], rel["c"]], ["c"]) == {s.server_path_of(rel["a"]): since - 1,
                                                           s.server_path_of(rel["c"]): since + 100}
    assert s.update(remove=[s.server_path_of(rel[n]) for n in "ac"]) == {} and not s.file.exists()
    moved = PendingPlaceholders(s.tree, "/elsewhere/users/alice [abc]/ai-series")
    s.update(add=[s.server_path_of(rel["a"])])
    assert moved.load() == {}  # a path the server cannot list any more (the root moved) is not waited for


def test_the_empty_marker_of_older_versions_means_every_placeholder_on_disk(tmp_path):
    s = placeholder_tree(tmp_path, ["a", "b"])
    s.file.touch()
    pending = s.load()
    assert set(pending) == set(s.on_disk()) and len(pending) == 2
    assert set(pending.values()) == {s.file.stat().st_mtime}
    s.file.write_text("{not json")
    assert set(s.load()) == set(s.on_disk())
