"""`series_library` and `library_matches_recommendations` against the sample server over real HTTP, with real
PostgreSQL: Jellyfin picks come from the real pipeline (catalog, local embeddings, history, recommendations),
Emby picks are inserted as a recommendation run."""

import copy
import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from aperture_dev.sample_server import SampleServer
from dagster import instance_for_test, materialize
from lxml import etree

from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.defs.embeddings.assets import series_embeddings
from aperture_assets.defs.library.assets import series_library
from aperture_assets.defs.library.checks import library_matches_recommendations
from aperture_assets.defs.recommendations.assets import series_recommendations
from aperture_assets.defs.watch_history.assets import series_watch_history
from aperture_assets.wiring.dagster_internals import partition_range_tags
from aperture_assets.wiring.partitions import users_partitions
from aperture_resources.ai import AIProviderResource
from aperture_resources.database import DatabaseResource, with_database
from aperture_resources.library import writer
from aperture_resources.library.cleanup import prune_user_libraries
from aperture_resources.library.resource import LibraryResource
from aperture_resources.library.server_sync import PLACEHOLDER_SUFFIX
from aperture_resources.media_server import EmbyServer, JellyfinServer
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.settings import ConfigError
from tests.conftest import media_resource

WRITES = {"POST", "DELETE"}


def range_tags(keys: list[str]) -> dict[str, str]:
    return partition_range_tags(keys[0], keys[-1])


def enabled_ids(server: SampleServer) -> dict[str, str]:
    return {u["Name"]: u["Id"] for u in server.state.users_json() if not u["Policy"]["IsDisabled"]}


@pytest.fixture(scope="module")
def jellyfin_world(module_database, sample_data):
    """Catalog, embeddings, history and recommendations from the sample Jellyfin server, once per module."""
    server = SampleServer(copy.deepcopy(sample_data), mode="jellyfin", api_key="test-key").start()
    ids = enabled_ids(server)
    keys = sorted(ids.values())
    resources = {"media_server": media_resource(server), "database": module_database, "pipeline": PipelineConfig(),
                 "ai": AIProviderResource()}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(users_partitions.name, keys)
        assert materialize([series_catalog, series_embeddings], resources=resources, instance=instance).success
        tags = range_tags(keys)
        assert materialize([series_watch_history], resources=resources, instance=instance, tags=tags).success
        assert materialize([series_recommendations], resources=resources, instance=instance, tags=tags).success
        yield SimpleNamespace(mode="jellyfin", instance=instance, ids=ids, keys=keys, database=module_database)
    server.stop()


@pytest.fixture(scope="module")
def emby_world(pg_server_url, template_db, sample_data):
    """The Emby catalog, and 12 picks per user inserted as a recommendation run."""
    name = f"aperture_library_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    database = DatabaseResource(url=with_database(pg_server_url, name))
    data = copy.deepcopy(sample_data)
    for user in data["users"]:  # arbitrary picks for everyone: access rules are tested elsewhere
        user.pop("policy", None)
    server = SampleServer(data, mode="emby", api_key="test-key").start()
    ids = enabled_ids(server)
    keys = sorted(ids.values())
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(users_partitions.name, keys)
        resources = {"media_server": media_resource(server), "database": database, "pipeline": PipelineConfig()}
        assert materialize([series_catalog], resources=resources, instance=instance).success
        with database.connect() as conn:
            series = [r[0] for r in conn.execute("SELECT id FROM series ORDER BY name, id")]
        for i, user_id in enumerate(keys):
            insert_picks(database, user_id, series[i * 3:i * 3 + 12])
        yield SimpleNamespace(mode="emby", instance=instance, ids=ids, keys=keys, database=database, data=data)
    server.stop()
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def insert_picks(database, user_id: str, series_ids: list[str]) -> None:
    """A new latest recommendation run with these picks in this order."""
    with database.connect() as conn:
        run_id = conn.execute("INSERT INTO recommendation_runs (user_id, model, parameters) VALUES (%s, 'test', '{}') "
                              "RETURNING id", (user_id,)).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO recommendations (run_id, rank, series_id, score, components, evidence) "
                            "VALUES (%s, %s, %s, 1, '{}', '[]')",
                            [(run_id, rank, sid) for rank, sid in enumerate(series_ids, start=1)])
        conn.commit()


@pytest.fixture(params=["jellyfin", "emby"])
def env(request, sample_data, tmp_path):
    """A fresh recording server, a fresh library root, and the world's database (new runs rolled back after)."""
    world = request.getfixturevalue(f"{request.param}_world")
    data = getattr(world, "data", sample_data)  # the server the world's picks were made on
    server = SampleServer(copy.deepcopy(data), mode=world.mode, api_key="test-key", record=True).start()
    with world.database.connect() as conn:
        last_run = conn.execute("SELECT coalesce(max(id), 0) FROM recommendation_runs").fetchone()[0]
    root = tmp_path / "libraries"
    media = media_resource(server)
    library = LibraryResource(media_server=media, root=str(root))
    yield SimpleNamespace(world=world, server=server, root=root, library=library, ids=world.ids, keys=world.keys,
                          resources={"media_server": media, "database": world.database,
                                     "pipeline": PipelineConfig(), "library": library})
    server.stop()
    with world.database.connect() as conn:  # the next test has a fresh server: forget this one's libraries
        conn.execute("DELETE FROM recommendation_runs WHERE id > %s", (last_run,))
        conn.execute("DELETE FROM picks_libraries")
        conn.execute("DELETE FROM user_access")
        conn.commit()


jellyfin_only = pytest.mark.parametrize("env", ["jellyfin"], indirect=True)


def run(env, raise_on_error: bool = True, **resources):
    env.server.reset_counters()
    return materialize([series_library, library_matches_recommendations], instance=env.world.instance,
                       resources={**env.resources, **resources}, tags=range_tags(env.keys),
                       raise_on_error=raise_on_error)


def writes(env) -> list:
    return [r for r in env.server.requests if r.method in WRITES]


def user_meta(result, user_id: str) -> dict:
    events = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
    return {k: v.value for k, v in events[user_id].items()}


def picks(env, user_id: str) -> list[tuple]:
    with env.world.database.connect() as conn:
        return conn.execute("SELECT r.rank, s.id, s.name, s.year FROM latest_recommendations r "
                            "JOIN series s ON s.id = r.series_id WHERE r.user_id = %s ORDER BY r.rank",
                            (user_id,)).fetchall()


def series_dir(env, name: str) -> Path:
    user_id = env.ids[name]
    return env.library.local_path(env.library.user_folder(user_id, name))


def library_of(env, name: str) -> dict:
    path = env.library.server_path(env.library.user_folder(env.ids[name], name))
    return next(f for f in env.server.state.folders if path in f["Locations"])


def test_tree_matches_the_picks_and_the_check_passes(env):
    result = run(env)
    assert result.get_asset_check_evaluations()[0].passed
    alice = env.ids["alice"]
    expected = picks(env, alice)
    folder = series_dir(env, "alice")
    assert folder.parent.name.endswith(f"[{alice[:12]}]") and folder.parent.parent.name == "users"
    assert len([p for p in folder.iterdir()]) == len(expected) == 12
    sort_titles = sorted(etree.parse(str(show / "tvshow.nfo")).findtext("sorttitle") for show in folder.iterdir())
    assert sort_titles == [f"{rank:03d} - {name}" for rank, _, name, _ in expected]
    assert len(list(folder.glob(f"*/Season 00/*{PLACEHOLDER_SUFFIX}"))) == 12
    links = [p for p in folder.rglob("*.mkv")]
    assert links and all(os.readlink(p).startswith("/media/") for p in links)  # the server's own paths
    meta = user_meta(result, alice)
    assert meta["files_written"] > 0 and meta["files_removed"] == 0 and meta["library_created"]
    assert meta["library_name"] == "alice's AI Picks - TV" and meta["placeholders_not_found"] == 0
    assert meta["picks"].splitlines()[0].startswith(f"1. {expected[0][2]}")


def test_request_sequence_and_idempotence(env):
    first = run(env)
    folders = {f["ItemId"]: f for f in env.server.state.folders}
    creates = [r for r in writes(env) if r.path.lower() == "/library/virtualfolders"]
    assert len(creates) == len(env.keys)
    refreshes = [r.path for r in writes(env) if r.path.endswith("/Refresh")]
    assert sorted(refreshes) == sorted(f"/Items/{library_of(env, n)['ItemId']}/Refresh" for n in env.ids)
    assert not [r for r in env.server.requests if r.path == "/Library/Refresh"]
    for request in writes(env):
        if request.path.endswith("/Policy"):
            assert {"AuthenticationProviderId", "PasswordResetProviderId", "IsAdministrator", "EnableRemoteAccess"} \
                <= request.body.keys()  # the whole policy, not a partial object
    played = [r for r in writes(env) if "Played" in r.path]
    assert len(played) == 12 * len(env.keys)
    for request in played:
        user = dict(request.query).get("userId") or request.path.split("/")[2]
        item = env.server.state.items[request.path.rsplit("/", 1)[1]]
        assert folders[item.library_id]["Locations"][0].split("/")[-2].endswith(f"[{user[:12]}]")
        assert item.extra["Path"].endswith(PLACEHOLDER_SUFFIX)
    alice, bob = env.ids["alice"], env.ids["bob"]
    placeholder = next(i for i in env.server.state.items.values()
                       if i.library_id == library_of(env, "alice")["ItemId"] and i.base.get("ParentIndexNumber") == 0)
    assert env.server.state.data_for(alice, placeholder.id).played
    assert not env.server.state.data_for(bob, placeholder.id).played
    assert first.get_asset_check_evaluations()[0].passed

    second = run(env)
    assert writes(env) == []
    assert user_meta(second, alice)["files_written"] == 0 and not user_meta(second, alice)["refreshed"]
    assert len(env.server.state.folders) == 3 + len(env.keys)


def test_every_user_sees_only_their_own_picks_library(env):
    run(env)
    state = env.server.state
    own = {name: library_of(env, name)["ItemId"] for name in env.ids}
    picks_items = {name: {i.id for i in state.items.values() if i.library_id == lib} for name, lib in own.items()}
    assert all(picks_items.values())
    admin = env.ids["alice"]
    assert state.users[admin].policy["IsAdministrator"]  # EnableAllFolders admins included
    for viewer, viewer_id in env.ids.items():
        client = media_resource(env.server).client()
        seen = {i["Id"] for i in client.user_items(viewer_id, "Episode", ["Path"])}
        seen |= {i["Id"] for i in client.user_items(viewer_id, "Series", ["Path"])}
        for owner in env.ids:
            if owner != viewer:
                assert not seen & picks_items[owner], (viewer, owner)
        assert picks_items[viewer] & seen
        real = {i.id for i in state.items.values() if i.library_id in {f["ItemId"] for f in state.folders[:2]}}
        assert real & seen  # the real libraries stay visible after EnableAllFolders is turned off
    if env.server.mode == "emby":
        guid = library_of(env, "bob")["Guid"]
        assert guid in state.users[env.ids["bob"]].policy["EnabledFolders"]


@jellyfin_only
def test_a_refused_policy_update_makes_nothing_visible_and_fails_naming_the_user(env):
    bob = env.ids["bob"]
    see_all = [uid for uid in env.keys if env.server.state.users[uid].policy.get("EnableAllFolders")]
    assert bob in see_all and len(see_all) > 2
    env.server.fail_next(f"/Users/{bob}/Policy", 500, times=3)  # every retry of this run's one update
    result = run(env, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    assert "PRIVACY" in str(failure) and "'bob'" in str(failure)
    paths = [r.path for r in writes(env)]
    assert not [p for p in paths if "VirtualFolders" in p or "Refresh" in p]  # nothing created or scanned
    assert sum("/Policy" in p and bob not in p for p in paths) >= len(see_all) - 1  # the others still restricted
    assert all(not f["Name"].endswith("AI Picks - TV") for f in env.server.state.folders)
    again = run(env)  # the fault cleared: the next run converges
    assert again.success and library_of(env, "bob") and library_of(env, "alice")


@jellyfin_only
def test_changes_propagate_with_one_refresh(env):
    run(env)
    alice = env.ids["alice"]
    before = picks(env, alice)
    kept = [row[1] for row in before[:-1]]
    insert_picks(env.world.database, alice, kept)  # the last pick dropped
    retitled, added_to = kept[0], kept[1]
    with env.world.database.connect() as conn:
        old_name = conn.execute("UPDATE series SET name = name || ' Redux' WHERE id = %s RETURNING name",
                                (retitled,)).fetchone()[0].removesuffix(" Redux")
        conn.execute("INSERT INTO episodes (id, series_id, season_number, episode_number, name, path) "
                     "SELECT 'new-episode', series_id, season_number, 99, 'New', "
                     "regexp_replace(path, 'E[0-9]+\\.mkv$', 'E99.mkv') FROM episodes "
                     "WHERE series_id = %s AND season_number = 1 AND removed_at IS NULL LIMIT 1", (added_to,))
        conn.commit()
    try:
        result = run(env)
        folder = series_dir(env, "alice")
        names = {p.name for p in folder.iterdir()}
        dropped = before[-1]
        assert not any(n.startswith(dropped[2]) for n in names)
        assert not any(n.startswith(f"{old_name} (") for n in names) and any(" Redux" in n for n in names)
        assert len(list(folder.rglob("*S01E99.mkv"))) == 1
        meta = user_meta(result, alice)
        assert meta["refreshed"] and meta["files_removed"] > 0
        affected = {name for name, uid in env.ids.items()
                    if name == "alice" or {retitled, added_to} & {row[1] for row in picks(env, uid)}}
        refreshes = [r.path for r in writes(env) if r.path.endswith("/Refresh")]
        assert sorted(refreshes) == sorted(f"/Items/{library_of(env, n)['ItemId']}/Refresh" for n in affected)
        assert result.get_asset_check_evaluations()[0].passed
    finally:
        with env.world.database.connect() as conn:
            conn.execute("UPDATE series SET name = %s WHERE id = %s", (old_name, retitled))
            conn.execute("DELETE FROM episodes WHERE id = 'new-episode'")
            conn.commit()


@jellyfin_only
def test_a_crash_before_the_swap_keeps_the_old_tree_and_the_next_run_converges(env, monkeypatch):
    run(env)
    alice = env.ids["alice"]
    folder = series_dir(env, "alice")
    snapshot = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    insert_picks(env.world.database, alice, [row[1] for row in reversed(picks(env, alice))])

    def crash(staging, live):
        raise OSError("simulated crash between staging and swap")

    monkeypatch.setattr(writer, "_swap_in", crash)
    assert not run(env, raise_on_error=False).success
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == snapshot
    assert not [p for p in folder.parent.iterdir() if "aperture-staging" in p.name]
    monkeypatch.undo()
    result = run(env)
    assert result.get_asset_check_evaluations()[0].passed
    assert user_meta(result, alice)["refreshed"]


@jellyfin_only
def test_a_disabled_user_loses_library_and_folder(env):
    run(env)
    bob = env.ids["bob"]
    folder = series_dir(env, "bob").parent
    library = library_of(env, "bob")
    env.server.state.users[bob].policy["IsDisabled"] = True
    result = run(env)
    assert not folder.exists()
    assert library["ItemId"] not in {f["ItemId"] for f in env.server.state.folders}
    assert [r.method for r in writes(env) if r.path == "/Library/VirtualFolders"] == ["DELETE"]
    assert user_meta(result, bob)["removed_libraries"] == [library["Name"]]
    assert series_dir(env, "alice").is_dir()


@jellyfin_only
def test_prune_removes_libraries_of_users_no_longer_enabled(env):
    run(env)
    keep = [env.ids["alice"]]
    with media_resource(env.server).client() as client:
        removal = prune_user_libraries(client, env.library, keep)
    assert len(removal.libraries) == len(removal.folders) == len(env.keys) - 1
    assert [p.name for p in (env.root / "users").iterdir()] == [series_dir(env, "alice").parent.name]


@jellyfin_only
def test_strm_mode_writes_urls_only_with_the_opt_in(env):
    media = env.resources["media_server"]
    refused = run(env, raise_on_error=False, library=LibraryResource(media_server=media, root=str(env.root),
                                                                     mode="strm"))
    assert not refused.success and writes(env) == []
    strm = LibraryResource(media_server=media, root=str(env.root), mode="strm", strm_api_key=True)
    result = run(env, library=strm)
    assert result.success and result.get_asset_check_evaluations()[0].passed
    files = [p for p in series_dir(env, "alice").rglob("*.strm") if "placeholder" not in p.name]
    assert files and all(p.read_text().startswith(f"{env.server.url}/Videos/") for p in files)
    assert all("ApiKey=test-key" in p.read_text() for p in files)
    episodes = [i for i in env.server.state.items.values()
                if i.library_id == library_of(env, "alice")["ItemId"] and i.type == "Episode"]
    assert len(episodes) > len(files) // 2  # Jellyfin scanned the URL .strm files


def test_options_put_the_key_in_urls_only_in_strm_mode_with_the_opt_in():
    for server, key_param in ((JellyfinServer, "ApiKey"), (EmbyServer, "api_key")):
        media = server(url="http://server:8096", api_key="k")
        with media.client() as client:
            for kind in ("symlink", "strm"):
                library = LibraryResource(media_server=media, root="/tmp/x", mode=kind)
                if kind == "strm":
                    with pytest.raises(ConfigError, match="APERTURE_LIBRARY_STRM_API_KEY=on"):
                        library.options(client, [])
                opted = LibraryResource(media_server=media, root="/tmp/x", mode=kind, strm_api_key=True)
                opted = opted.options(client, [])
                assert (opted.stream_url is not None) == (kind == "strm")
                assert kind == "symlink" or opted.stream_url.endswith(f"&{key_param}=k")


def test_library_traffic_matches_the_openapi_specs(env):
    from tests.contract.openapi import ContractError, contract

    run(env)
    recorded = list(env.server.requests)
    env.server.state.users[env.ids["bob"]].policy["IsDisabled"] = True
    run(env)
    recorded += env.server.requests
    assert {"DELETE", "POST"} & {r.method for r in recorded if "VirtualFolders" in r.path}
    keys = ["emby-4.8"] if env.server.mode == "emby" else ["jellyfin-10.10", "jellyfin-10.11"]
    with media_resource(env.server).client() as client:
        headers = client.auth_headers("test-key")
    for key in keys:
        spec, failures = contract(key), set()
        for rec in recorded:
            try:
                spec.validate_request(rec.method, rec.raw_path, rec.query, rec.body, headers)
            except ContractError as exc:
                failures.add(str(exc))
        assert not failures, sorted(failures)[:10]

