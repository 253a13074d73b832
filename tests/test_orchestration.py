"""The code location as an admin sees it: jobs, schedules, sensors, automation, checks and the CLI run."""

import copy
import os
import subprocess
import sys
import time

import psycopg
from aperture_dev.sample_server import SampleServer
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
    instance_for_test,
    materialize,
)

from aperture_assets.definitions import defs as load_defs
from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.defs.catalog.checks import catalog_not_empty_and_no_mass_removal, removed_share
from aperture_assets.defs.catalog.sensors import media_library_changes
from aperture_assets.defs.embeddings.assets import series_embeddings
from aperture_assets.defs.library.assets import series_library
from aperture_assets.defs.recommendations.assets import series_recommendations
from aperture_assets.defs.watch_history.assets import series_watch_history
from aperture_assets.wiring.partitions import users_partitions
from aperture_assets.wiring.resources import build_resources
from aperture_assets.wiring.stage import pool_storage_connections
from aperture_resources.database import resolve_urls, sqlalchemy_url
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.settings import load_settings
from tests.conftest import media_resource

SPEC_JOBS = {"sync_series", "sync_series_watch_history", "generate_series_embeddings",
             "generate_series_recommendations", "sync_series_libraries", "full_refresh"}


def test_definitions_snapshot():
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    deps = {key.to_user_string(): sorted(p.to_user_string() for p in graph.get(key).parent_keys)
            for key in graph.get_all_asset_keys()}
    assert deps == {
        "series_catalog": [],
        "series_embeddings": ["series_catalog"],
        "series_watch_history": ["series_catalog"],
        "series_recommendations": ["series_embeddings", "series_watch_history"],
        "series_library": ["series_recommendations"],
        "recommendation_quality": ["series_embeddings", "series_watch_history"],
    }
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["series_catalog"] == "catalog" and groups["series_library"] == "libraries"
    partitioned = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).partitions_def}
    assert partitioned == {"series_watch_history", "series_recommendations", "series_library"}
    assert {job.name for job in defs.jobs} >= SPEC_JOBS | {"purge_old_runs"}
    # all start running: those that need the media server skip while it is not configured (test_no_false_alarms)
    assert {s.name: s.default_status for s in defs.sensors} == {
        "media_users": DefaultSensorStatus.RUNNING, "media_library_changes": DefaultSensorStatus.RUNNING,
        "aperture_automation": DefaultSensorStatus.RUNNING, "dead_run_recovery": DefaultSensorStatus.RUNNING,
        "library_placeholders": DefaultSensorStatus.RUNNING}
    assert all(s.default_status == DefaultScheduleStatus.RUNNING for s in defs.schedules)
    crons = {s.job_name: s.cron_schedule for s in defs.schedules}
    assert crons["sync_series"] == "0 2 * * *" and crons["generate_series_embeddings"] == "0 3 * * *"
    assert crons["sync_series_watch_history"] == "0 */2 * * *" and crons["generate_series_recommendations"] == \
        "0 4 * * 1"
    assert "sync_series_libraries" not in crons  # follows recommendations by automation, not a cron guess
    assert crons["purge_old_runs"] == "30 5 * * *"  # run retention
    checks = {c.name for c in graph.asset_check_keys}
    assert checks == {"catalog_not_empty_and_no_mass_removal", "every_series_has_a_vector",
                      "recommendations_exclude_started", "library_matches_recommendations",
                      "placeholders_confirmed_within_a_day"}
    full = defs.resolve_job_def("full_refresh")
    assert {k.to_user_string() for k in full.asset_layer.executable_asset_keys} == {
        "series_catalog", "series_embeddings", "series_watch_history", "series_recommendations", "series_library"}


def test_definitions_load_with_no_environment():
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    code = "from aperture_assets.definitions import defs; d = defs(); d.validate_loadable(d); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_per_user_schedules_request_one_run_over_every_user(sample_server):
    schedule = next(s for s in load_defs().schedules if s.job_name == "sync_series_watch_history")
    resources = {"media_server": media_resource(sample_server), "pipeline": PipelineConfig()}
    with instance_for_test() as instance:
        with build_schedule_context(instance=instance, resources=resources) as context:
            assert not schedule.evaluate_tick(context).run_requests  # no users yet
        instance.add_dynamic_partitions(users_partitions.name, ["u1", "u2", "u3"])
        with build_schedule_context(instance=instance, resources=resources) as context:
            requests = schedule.evaluate_tick(context).run_requests
    assert len(requests) == 1
    assert requests[0].tags["dagster/asset_partition_range_start"] == "u1"
    assert requests[0].tags["dagster/asset_partition_range_end"] == "u3"


def test_per_user_schedules_split_the_users_into_runs_of_users_per_run(sample_server):
    """APERTURE_USERS_PER_RUN: contiguous ranges covering every user once, for workers to share."""
    schedule = next(s for s in load_defs().schedules if s.job_name == "generate_series_recommendations")
    resources = {"media_server": media_resource(sample_server), "pipeline": PipelineConfig(users_per_run=2)}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(users_partitions.name, ["u1", "u2", "u3", "u4", "u5"])
        with build_schedule_context(instance=instance, resources=resources) as context:
            requests = schedule.evaluate_tick(context).run_requests
    ranges = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
              for r in requests]
    assert ranges == [("u1", "u2"), ("u3", "u4"), ("u5", "u5")]
    assert len({r.run_key for r in requests}) == 3  # a schedule's several runs are each keyed


def test_automation_follows_upstream():
    assets = Definitions(assets=[series_catalog, series_embeddings, series_watch_history, series_recommendations,
                                 series_library], resources=build_resources(load_settings()))
    with instance_for_test() as instance:
        result = evaluate_automation_conditions(assets, instance)  # first evaluation: nothing is new yet
        assert result.total_requested == 0
        instance.report_runless_asset_event(_materialization("series_catalog"))
        instance.add_dynamic_partitions(users_partitions.name, ["newuser"])
        result = evaluate_automation_conditions(assets, instance, cursor=result.cursor)
        assert result.get_num_requested(AssetKey("series_embeddings")) == 1  # new series embedded at once
        assert result.get_requested_partitions(AssetKey("series_watch_history")) == {"newuser"}  # new user
        assert result.get_num_requested(AssetKey("series_library")) == 0  # no picks yet for that user
        cursor = result.cursor
        instance.report_runless_asset_event(_materialization("series_recommendations", "newuser"))
        result = evaluate_automation_conditions(assets, instance, cursor=cursor)
        assert result.get_requested_partitions(AssetKey("series_library")) == {"newuser"}  # picks changed


def _materialization(key: str, partition: str | None = None):
    from dagster import AssetMaterialization

    return AssetMaterialization(asset_key=key, partition=partition)


def test_library_change_sensor_triggers_the_catalog_sync(sample_server):
    resources = {"media_server": media_resource(sample_server)}
    with instance_for_test() as instance:
        context = build_sensor_context(instance=instance, resources=resources)
        assert list(media_library_changes.evaluate_tick(context).run_requests) == []  # first tick: fingerprint only
        context = build_sensor_context(instance=instance, resources=resources, cursor=context.cursor)
        assert list(media_library_changes.evaluate_tick(context).run_requests) == []  # unchanged
        season = next(i for i in sample_server.state.items.values() if i.type == "Season" and
                      i.base.get("IndexNumber") == 1)
        sample_server.state.add_episode(season.id, 99)
        context = build_sensor_context(instance=instance, resources=resources, cursor=context.cursor)
        requests = media_library_changes.evaluate_tick(context).run_requests
    assert len(requests) == 1 and requests[0].job_name in (None, "sync_series")


def test_removed_share_counts_only_previously_active_series():
    assert removed_share({"series_total": 75, "series_removed": 25, "series_new": 0}) == 0.25
    assert removed_share({"series_total": 100, "series_removed": 0, "series_new": 100}) == 0.0


def test_mass_removal_stops_downstream_in_the_same_run(resources, sample_server, sql):
    run = [series_catalog, catalog_not_empty_and_no_mass_removal, series_embeddings]
    with instance_for_test() as instance:
        ai = _fake_ai()
        assert materialize(run, resources={**resources, "ai": ai}, instance=instance).success
        embedded = sql("SELECT count(*) FROM series_embeddings")[0][0]
        for series_id in [r[0] for r in sql("SELECT id FROM series ORDER BY id")][: int(embedded * 0.5)]:
            sample_server.state.remove_series(series_id)
        with resources["database"].connect() as conn:
            conn.execute("DELETE FROM series_embeddings")
        result = materialize(run, resources={**resources, "ai": ai}, instance=instance, raise_on_error=False)
    assert not result.success
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and check.metadata["shrunken_libraries"].value  # the library lost half its series
    assert sql("SELECT count(*) FROM series_embeddings")[0][0] == 0  # embeddings never ran on the broken catalog
    assert sql("SELECT count(*) FROM series WHERE removed_at IS NOT NULL")[0][0] == 0  # nothing marked removed


def _fake_ai():
    from aperture_resources.ai import AIProviderResource

    return AIProviderResource()


def test_aperture_run_end_to_end_against_the_sample_server(tmp_path, sample_data, monkeypatch):
    server = SampleServer(copy.deepcopy(sample_data), mode="jellyfin", api_key="cli-key").start()
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
           "APERTURE_MEDIA_SERVER_URL": server.url, "APERTURE_MEDIA_SERVER_API_KEY": "cli-key",
           "APERTURE_DATA_DIR": str(tmp_path / "data")}
    aperture = os.path.join(os.path.dirname(sys.executable), "aperture")
    try:
        done = subprocess.run([aperture, "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        for stage in ("sync_series", "generate_series_embeddings", "sync_series_watch_history",
                      "generate_series_recommendations", "sync_series_libraries"):
            assert f"| {stage} | ok |" in done.stdout
        assert "| alice | 12 |" in done.stdout
        app_url, dagster_url = resolve_urls("", tmp_path / "data")
        with psycopg.connect(app_url) as conn:
            sessions = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = 'dagster'").fetchone()[0]
        # Dagster's storage keeps a pool in the run process: ~85 sessions for this run, ~700 without one
        assert 0 < sessions < 250
        monkeypatch.setenv("APERTURE_DAGSTER_STORAGE_URL", dagster_url)
        with DagsterInstance.from_config(str(tmp_path / "data" / "dagster_home")) as instance:
            runs = instance.get_runs()  # recorded as a Dagster run, visible in the UI
            assert [r.job_name for r in runs] == ["full_refresh"] and runs[0].is_success
            # filed under the code location `aperture dev` serves, so the UI lists it under its job too
            assert runs[0].remote_job_origin.location_name == "aperture"
            assert runs[0].tags[".dagster/repository"] == "__repository__@aperture"
            done = {e.asset_key.to_user_string() for e in instance.get_records_for_run(
                runs[0].run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
                for e in [e.event_log_entry.dagster_event]}
            assert done == {"series_catalog", "series_embeddings", "series_watch_history", "series_recommendations",
                            "series_library"}
        partial = subprocess.run([aperture, "run", "--select", "sync_series"], env=env, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=300)
        assert partial.returncode == 0 and "| sync_series | ok |" in partial.stdout
        assert "sync_series_libraries" not in partial.stdout.split("| Stage")[0]
        bad = subprocess.run([aperture, "run"], env={**env, "APERTURE_MEDIA_SERVER_API_KEY": "wrong"},
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert bad.returncode != 0
        assert "APERTURE_MEDIA_SERVER_API_KEY" in bad.stdout + bad.stderr
        assert "Traceback" not in bad.stderr
    finally:
        subprocess.run([aperture, "db", "stop"], env=env, cwd=tmp_path, capture_output=True, timeout=60)
        server.stop()


def test_a_stage_waits_while_another_run_materializes_it(resources, sql):
    import threading

    finished = threading.Event()

    def sync():
        materialize([series_catalog], resources=resources)
        finished.set()

    with resources["database"].exclusive("series_catalog"):  # another run is in the catalog stage
        worker = threading.Thread(target=sync)
        worker.start()
        assert not finished.wait(3.0)  # ours waits for it instead of racing on the same rows
        assert sql("SELECT count(*) FROM series")[0][0] == 0
    worker.join(60)
    assert finished.is_set() and sql("SELECT count(*) FROM series")[0][0] > 0


def test_storage_connections_are_pooled_once_per_instance(database):
    """Each storage call opens a connection unless the process pools them (what every stage body does)."""
    name = psycopg.conninfo.conninfo_to_dict(database.url)["dbname"]

    def sessions() -> int:
        time.sleep(0.2)  # a closed backend reports its session as it exits
        with psycopg.connect(database.url) as conn:
            return conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()[0]

    storage = {"postgres": {"postgres_url": sqlalchemy_url(database.url, "psycopg2")}}
    with instance_for_test(overrides={"storage": storage}) as instance:
        before = sessions()
        for _ in range(20):
            instance.get_runs(limit=1)
        unpooled = sessions() - before - 1  # minus the counting connection itself
        pool_storage_connections(instance)
        pool_storage_connections(instance)  # a second call keeps the same pool
        before = sessions()
        for _ in range(20):
            instance.get_runs(limit=1)
        pooled = sessions() - before - 1
    assert unpooled >= 15 and pooled <= 2, (unpooled, pooled)


def test_run_config_cannot_redirect_the_server_or_the_library_root(resources, sample_server, sql):
    """The launchpad could otherwise send the API key to any URL or write anywhere: such a run is refused."""
    evil = {"resources": {"media_server": {"config": {"url": "http://127.0.0.1:9", "api_key": "k"}}}}
    result = materialize([series_catalog], resources=resources, run_config=evil, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert "resources.media_server.config.api_key, resources.media_server.config.url cannot be set" in failure
    assert sql("SELECT count(*) FROM series")[0][0] == 0 and sample_server.request_count == 0
    assert materialize([series_catalog], resources=resources).success  # the environment's settings still work
