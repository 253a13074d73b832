"""No false alarms: without a media server every tick that needs one is skipped with the variable to set (never
failed), and a failed step is retried only when its error is transient, so a configuration error leaves exactly
one failed run and no retry, while a server answering 503 for a while is ridden out within the run."""

from pathlib import Path

import psycopg
import pytest
import yaml
from aperture_dev.sample_server.server import FaultPlan
from dagster import (
    DagsterEventType,
    Definitions,
    RetryPolicy,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from aperture_assets.definitions import defs as load_defs
from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.wiring import jobs
from aperture_assets.wiring.partitions import users_partitions
from aperture_assets.wiring.stage import transient
from aperture_resources.database import DatabaseResource
from aperture_resources.library.resource import LibraryResource
from aperture_resources.media_server import JellyfinServer
from aperture_resources.pipeline_config import PipelineConfig
from tests.conftest import media_resource

SERVER_SENSORS = {"media_users", "media_library_changes", "library_placeholders"}
RUN_RETRIES = yaml.safe_load((Path(__file__).parents[1] / "dagster.yaml").read_text())["run_retries"]


def unconfigured(database: DatabaseResource, root: Path) -> dict:
    media = JellyfinServer(url="", api_key="")  # APERTURE_MEDIA_SERVER_URL and _API_KEY unset
    return {"media_server": media, "database": database, "pipeline": PipelineConfig(),
            "library": LibraryResource(media_server=media, root=str(root))}


def test_without_a_media_server_every_tick_that_needs_it_skips_naming_the_variable(database, tmp_path):
    definitions = load_defs()
    resources = unconfigured(database, tmp_path)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(users_partitions.name, ["alice", "bob"])  # as after `make demo`
        for sensor in definitions.sensors:
            if sensor.name not in SERVER_SENSORS:
                continue
            with build_sensor_context(instance=instance, resources=resources) as context:
                result = sensor.evaluate_tick(context)
            assert not result.run_requests, sensor.name
            assert result.skip_message.startswith("APERTURE_MEDIA_SERVER_URL is not set"), sensor.name
        reasons = {}
        for schedule in definitions.schedules:
            with build_schedule_context(instance=instance, resources=resources) as context:
                result = schedule.evaluate_tick(context)
            reasons[schedule.job_name] = "" if result.run_requests else result.skip_message
    assert reasons.pop("purge_old_runs") == ""  # run retention needs no server
    assert reasons and all(r.startswith("APERTURE_MEDIA_SERVER_URL is not set") for r in reasons.values()), reasons


def test_the_api_key_is_named_when_only_it_is_missing(database, tmp_path, sample_server):
    resources = unconfigured(database, tmp_path)
    resources["media_server"] = JellyfinServer(url=sample_server.url, api_key="")
    sensor = next(s for s in load_defs().sensors if s.name == "media_users")
    with instance_for_test() as instance, build_sensor_context(instance=instance, resources=resources) as context:
        result = sensor.evaluate_tick(context)
    assert result.skip_message.startswith("APERTURE_MEDIA_SERVER_API_KEY is not set")
    assert sample_server.request_count == 0


def test_a_configured_server_gets_its_runs(resources):
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(users_partitions.name, ["alice", "bob"])
        for schedule in load_defs().schedules:
            with build_schedule_context(instance=instance, resources=resources) as context:
                result = schedule.evaluate_tick(context)
            assert len(result.run_requests) == 1, (schedule.name, result.skip_message)


def sync_series_job(resources: dict):
    """The catalog stage's job as `defs()` builds it (with its RetryPolicy), on `resources`."""
    job = jobs.asset_job("sync_series", ("series_catalog",), "catalog", per_user=False)
    return Definitions(assets=[series_catalog], jobs=[job], resources=resources).resolve_job_def("sync_series")


def retries_of(instance, run_id: str) -> int:
    return len(instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY).records)


@pytest.mark.parametrize("fault", ["url-unset", "key-rejected", "http-404", "malformed-json"])
def test_an_error_to_fix_fails_once_with_no_retry(fault, resources, sample_server, tmp_path):
    if fault == "url-unset":
        resources = unconfigured(resources["database"], tmp_path)
    elif fault == "key-rejected":
        resources["media_server"] = media_resource(sample_server, api_key="wrong")
    else:
        sample_server.faults = FaultPlan(error_rate=1.0, error_status=404) if fault == "http-404" else \
            FaultPlan(malformed_json_paths=("/",))
    expected = {"url-unset": "APERTURE_MEDIA_SERVER_URL is not set", "key-rejected": "API_KEY was rejected",
                "http-404": "(HTTP 404)", "malformed-json": "malformed (non-JSON) response"}[fault]
    with instance_for_test(overrides={"run_retries": RUN_RETRIES}) as instance:
        result = sync_series_job(resources).execute_in_process(instance=instance, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
        assert not result.success and len(instance.get_runs()) == 1
        assert retries_of(instance, result.run_id) == 0  # the step is not retried ...
        assert run.tags["dagster/will_retry"] == "false"  # ... nor the run (what the daemon reads)
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    assert expected in failure.message


class FailFirst(FaultPlan):
    """Answers 503 to the first `count` requests under `rate_paths`, then recovers (a server restarting)."""

    def __init__(self, count: int, **kwargs) -> None:
        super().__init__(error_rate=1.0, **kwargs)
        self.count = count

    def roll(self, kind: str, rate: float, path: str = "") -> bool:
        return self.injected.get(kind, 0) < self.count and super().roll(kind, rate, path)


def test_a_server_failing_for_a_while_is_ridden_out_by_step_retries(resources, sample_server, sql, monkeypatch):
    # the client retries once within the request, so 2 failures fail the step's first attempt
    resources["media_server"] = media_resource(sample_server, retries=1)
    plan = sample_server.faults = FailFirst(2, rate_paths=("/Items",))
    monkeypatch.setattr(jobs, "RETRY", RetryPolicy(max_retries=jobs.RETRY.max_retries, delay=0.2))  # not 15 s
    with instance_for_test(overrides={"run_retries": RUN_RETRIES}) as instance:
        result = sync_series_job(resources).execute_in_process(instance=instance, raise_on_error=False)
        assert result.success and plan.injected["error"] == 2
        assert retries_of(instance, result.run_id) == 1 and len(instance.get_runs()) == 1
    assert sql("SELECT count(*) FROM series")[0][0] > 0


def test_transient_errors_are_told_from_errors_to_fix(sample_server, pg_server_url):
    """Through the real clients: what they raise after their own retries, and why."""
    def error_of(call) -> Exception:
        try:
            call()
        except Exception as exc:
            return exc
        raise AssertionError("expected an error")

    def users(**overrides):
        return error_of(lambda: media_resource(sample_server, **overrides).client().users())

    closed = "http://127.0.0.1:9"
    sample_server.faults = FaultPlan(error_rate=1.0, error_status=503)
    assert transient(users())  # "kept failing (HTTP 503)"
    assert transient(users(url=closed))  # "APERTURE_MEDIA_SERVER_URL: cannot reach": down, or restarting
    sample_server.faults = FaultPlan(error_rate=1.0, error_status=400)
    assert not transient(users())
    sample_server.faults = None
    assert not transient(users(api_key="wrong"))  # a ConfigError naming the key

    gone = DatabaseResource(url=psycopg.conninfo.make_conninfo(pg_server_url, port=9))
    assert transient(error_of(lambda: gone.connect().__enter__()))  # "APERTURE_DATABASE_URL: cannot connect"
    with psycopg.connect(pg_server_url) as conn:
        assert not transient(error_of(lambda: conn.execute("SELECT * FROM no_such_table")))  # a bug stays one


@pytest.mark.parametrize(("status", "retried"), [(404, False), (503, True)])
def test_a_user_whose_read_fails_is_retried_only_when_the_fault_may_pass(status, retried, emby_server, database,
                                                                         sql, monkeypatch):
    """Watch history isolates users: the others are saved, and the step is retried only for a transient error.
    (Emby reads a user's items under /Users/{id}/, so a fault can hit one user.)"""
    from aperture_assets.defs.watch_history.assets import series_watch_history
    from aperture_assets.wiring.dagster_internals import partition_range_tags

    resources = {"media_server": media_resource(emby_server, retries=0), "database": database,
                 "pipeline": PipelineConfig()}
    assert sync_series_job(resources).execute_in_process().success
    ids = {u["Name"]: u["Id"] for u in emby_server.state.users_json()}
    monkeypatch.setattr(jobs, "RETRY", RetryPolicy(max_retries=1, delay=0.1))
    emby_server.faults = FaultPlan(error_rate=1.0, error_status=status, rate_paths=(f"/Users/{ids['alice']}/",))
    job = jobs.asset_job("sync_series_watch_history", ("series_watch_history",), "history")
    keys = sorted([ids["alice"], ids["bob"]])
    with instance_for_test(overrides={"run_retries": RUN_RETRIES}) as instance:
        instance.add_dynamic_partitions(users_partitions.name, keys)
        result = Definitions(assets=[series_watch_history], jobs=[job], resources=resources).resolve_job_def(
            "sync_series_watch_history").execute_in_process(
            instance=instance, raise_on_error=False, tags=partition_range_tags(keys[0], keys[-1]))
        assert not result.success and (retries_of(instance, result.run_id) == 1) is retried
    assert sql("SELECT count(*) FROM episode_watch_state WHERE user_id = %s", (ids["bob"],))[0][0] > 0
    assert sql("SELECT count(*) FROM episode_watch_state WHERE user_id = %s", (ids["alice"],))[0][0] == 0
