"""Retention of old runs: a daily job deletes finished Dagster runs older than APERTURE_RUN_RETENTION_DAYS.

Why: Dagster OSS keeps every run and its event log forever (dagster.yaml's `retention` covers schedule and
sensor ticks only), and the schedules here start about 15 runs a day, each with events for ~50 partitions.
The newest successful run of each job is always kept, whatever its age, so a job that stopped running still
shows its last good run; with the default schedules every asset partition is materialized again at least
weekly, well inside the default 30 days, so automation and the UI keep what they read. Runs still queued or
in progress are never touched. 0 days keeps everything.
"""

from datetime import UTC, datetime, timedelta

from dagster import (
    DagsterRunStatus,
    DefaultScheduleStatus,
    OpExecutionContext,
    Output,
    RunsFilter,
    ScheduleDefinition,
    job,
    op,
)

from aperture_resources.pipeline_config import PipelineConfig

FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]


@op(description="Delete finished runs (and their event logs) older than APERTURE_RUN_RETENTION_DAYS, keeping "
    "the newest successful run of every job.")
def delete_old_runs(context: OpExecutionContext, pipeline: PipelineConfig) -> Output[int]:
    days = pipeline.run_retention_days
    if not days:
        return Output(0, metadata={"runs_deleted": 0, "retention_days": 0})
    cutoff = datetime.now(UTC) - timedelta(days=days)
    instance = context.instance
    old = [r.dagster_run for r in instance.get_run_records(filters=RunsFilter(statuses=FINISHED,
                                                                               created_before=cutoff))]
    keep = set()
    for name in {run.job_name for run in old}:
        latest = instance.get_runs(filters=RunsFilter(job_name=name, statuses=[DagsterRunStatus.SUCCESS]), limit=1)
        keep.update(run.run_id for run in latest)
    doomed = [run.run_id for run in old if run.run_id not in keep]
    for run_id in doomed:
        instance.delete_run(run_id)
    context.log.info("deleted %d runs created before %s", len(doomed), f"{cutoff:%Y-%m-%d %H:%M %Z}")
    return Output(len(doomed), metadata={"runs_deleted": len(doomed), "retention_days": days,
                                        "cutoff": cutoff.isoformat(timespec="seconds"),
                                        "runs_kept_as_newest_success": len(old) - len(doomed)})


@job(description="Delete runs older than APERTURE_RUN_RETENTION_DAYS (default 30), keeping each job's newest "
     "successful run.")
def purge_old_runs():
    delete_old_runs()


purge_old_runs_schedule = ScheduleDefinition(
    name="purge_old_runs_schedule", job=purge_old_runs, cron_schedule="30 5 * * *",
    default_status=DefaultScheduleStatus.RUNNING, description="Daily at 05:30: run retention.")
