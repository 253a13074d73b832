"""How the stages' jobs and schedules are made: one asset job per stage (per-user stages as ONE run over
all user partitions, a partition-range run; the assets use a single-run backfill policy), each retrying a
failed step with exponential backoff (errors a user must fix fail at once instead, see stage.py), and
schedules, which `defs()` puts in APERTURE_TIMEZONE (declaring them reads no environment)."""

from dagster import (
    AssetSelection,
    Backoff,
    DefaultScheduleStatus,
    Jitter,
    JobDefinition,
    RetryPolicy,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from aperture_assets.wiring.dagster_internals import partition_range_tags
from aperture_assets.wiring.partitions import users_partitions

RETRY = RetryPolicy(max_retries=3, delay=15, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
STAGE_ASSETS = ("series_catalog", "series_embeddings", "series_watch_history", "series_recommendations",
                "series_library")
AssetJob = JobDefinition  # what define_asset_job returns, resolved when the definitions load


def asset_job(name: str, assets: tuple[str, ...], description: str, per_user: bool = True) -> AssetJob:
    # dagster.yaml lets one run tagged as a library stage run at a time (two would race on the server's libraries)
    tags = {"aperture/stage": "library"} if "series_library" in assets else None
    return define_asset_job(name, selection=AssetSelection.assets(*assets), description=description,
                            partitions_def=users_partitions if per_user else None, op_retry_policy=RETRY, tags=tags)


def all_users_run(keys: list[str]) -> RunRequest | SkipReason:
    """One run covering every user partition."""
    if not keys:
        return SkipReason("no enabled users yet (the media_users sensor adds them)")
    return RunRequest(tags=partition_range_tags(keys[0], keys[-1]))


def cron(job: AssetJob, cron_schedule: str, description: str) -> ScheduleDefinition:
    return ScheduleDefinition(name=f"{job.name}_schedule", job=job, cron_schedule=cron_schedule,
                              default_status=DefaultScheduleStatus.RUNNING, description=description)


def per_user_schedule(job: AssetJob, cron_schedule: str, description: str) -> ScheduleDefinition:
    @schedule(name=f"{job.name}_schedule", job=job, cron_schedule=cron_schedule,
              default_status=DefaultScheduleStatus.RUNNING, description=description)
    def every_user(context: ScheduleEvaluationContext):
        return all_users_run(context.instance.get_dynamic_partitions(users_partitions.name))

    return every_user
