"""Run retention: old finished runs go, each job's newest success and recent runs stay."""

from datetime import UTC, datetime, timedelta

from dagster import DagsterInstance, asset, instance_for_test, materialize
from dagster._core.storage.runs.schema import RunsTable

from aperture_assets.defs.retention.jobs import purge_old_runs
from aperture_resources.pipeline_config import PipelineConfig


@asset
def probe(context) -> None:
    if context.run.tags.get("fail"):
        raise RuntimeError("failing on purpose")


def run_probe(instance: DagsterInstance, fail: bool = False) -> str:
    return materialize([probe], instance=instance, tags={"fail": "1"} if fail else {},
                       raise_on_error=False).run_id


def age(instance: DagsterInstance, run_ids: list[str], days: int) -> None:
    """Backdate runs (the storage stamps creation time itself; tests cannot wait 30 days)."""
    with instance.run_storage.connect() as conn:
        conn.execute(RunsTable.update().where(RunsTable.c.run_id.in_(run_ids))
                     .values(create_timestamp=datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)))


def purge(instance: DagsterInstance, days: int) -> int:
    result = purge_old_runs.execute_in_process(instance=instance,
                                               resources={"pipeline": PipelineConfig(run_retention_days=days)})
    return result.output_for_node("delete_old_runs")


def test_old_runs_are_deleted_but_each_jobs_newest_success_stays():
    with instance_for_test() as instance:
        oldest, older_failed, newest_old_success, old_failed_after = (
            run_probe(instance), run_probe(instance, fail=True), run_probe(instance), run_probe(instance, fail=True))
        recent_failed = run_probe(instance, fail=True)
        age(instance, [oldest, older_failed, newest_old_success, old_failed_after], days=40)

        assert purge(instance, days=0) == 0  # retention off
        assert purge(instance, days=30) == 3

        left = {run.run_id for run in instance.get_runs()}
        assert {oldest, older_failed, old_failed_after}.isdisjoint(left)
        assert {newest_old_success, recent_failed} <= left  # the only success of the job, however old; recent
        assert not instance.all_logs(oldest)  # the event log went with the run
        assert purge(instance, days=30) == 0  # nothing left to do


def test_a_newer_success_lets_the_old_one_go():
    with instance_for_test() as instance:
        old = run_probe(instance)
        age(instance, [old], days=40)
        new = run_probe(instance)
        assert purge(instance, days=30) == 1
        job_name = instance.get_run_by_id(new).job_name
        assert {run.run_id for run in instance.get_runs() if run.job_name == job_name} == {new}

