"""How the stages' jobs and schedules are made: one asset job per stage (per-user stages as ONE run over
all user partitions, a partition-range run; the assets use a single-run backfill policy), each retrying a
step that failed on a transient error with exponential backoff (anything else fails at once, see stage.py),
and schedules, which `defs()` puts in APERTURE_TIMEZONE (declaring them reads no environment).

Every schedule and sensor starts RUNNING; the stages' schedules and the sensors that read the media server
skip their tick with a sentence naming the variable to set while it is not configured, so a fresh install
shows skipped ticks, not failed ones, and starts working as soon as the server is set."""

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
from aperture_resources.media_server import MediaServerResource
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.settings import ConfigError, require_media_server

RETRY = RetryPolicy(max_retries=3, delay=15, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
STAGE_ASSETS = ("series_catalog", "series_embeddings", "series_watch_history", "series_recommendations",
                "series_library")
AssetJob = JobDefinition  # what define_asset_job returns, resolved when the definitions load


def asset_job(name: str, assets: tuple[str, ...], description: str, per_user: bool = True) -> AssetJob:
    # dagster.yaml lets one run tagged as a library stage run at a time (two would race on the server's libraries)
    tags = {"aperture/stage": "library"} if "series_library" in assets else None
    return define_asset_job(name, selection=AssetSelection.assets(*assets), description=description,
                            partitions_def=users_partitions if per_user else None, op_retry_policy=RETRY, tags=tags)


def media_server_missing(media_server: MediaServerResource) -> SkipReason | None:
    """A SkipReason naming the variable to set while the media server is not configured, else None: a tick
    that needs the server is skipped (grey in the UI), never failed, until the operator sets it."""
    try:
        require_media_server(media_server.url, media_server.api_key)
    except ConfigError as exc:
        return SkipReason(f"{exc} Skipped until then.")
    return None


def all_users_run(keys: list[str], per_run: int = 0) -> list[RunRequest] | SkipReason:
    """Runs covering every user partition: one, or one per `per_run` users (a partition range each, in the
    partitions' order), which an executor such as Celery spreads over its workers."""
    if not keys:
        return SkipReason("no enabled users yet (the media_users sensor adds them)")
    size = per_run or len(keys)
    groups = [keys[start:start + size] for start in range(0, len(keys), size)]
    # a schedule that returns several runs must key each one
    return [RunRequest(run_key=f"{group[0]}..{group[-1]}" if len(groups) > 1 else None,
                       tags=partition_range_tags(group[0], group[-1])) for group in groups]


def cron(job: AssetJob, cron_schedule: str, description: str) -> ScheduleDefinition:
    """A schedule of the whole job, skipped while the media server is not configured (aperture has nothing to
    work on without it)."""

    @schedule(name=f"{job.name}_schedule", job=job, cron_schedule=cron_schedule,
              default_status=DefaultScheduleStatus.RUNNING, description=description)
    def when_configured(media_server: MediaServerResource) -> RunRequest | SkipReason:
        return media_server_missing(media_server) or RunRequest()

    return when_configured


def per_user_schedule(job: AssetJob, cron_schedule: str, description: str) -> ScheduleDefinition:
    """Runs over every user partition (see `all_users_run`); skipped while the media server is not configured
    (each per-user stage reads the server)."""
    @schedule(name=f"{job.name}_schedule", job=job, cron_schedule=cron_schedule,
              default_status=DefaultScheduleStatus.RUNNING, description=description)
    def every_user(context: ScheduleEvaluationContext, media_server: MediaServerResource, pipeline: PipelineConfig
                   ) -> list[RunRequest] | SkipReason:
        return media_server_missing(media_server) or all_users_run(
            context.instance.get_dynamic_partitions(users_partitions.name), pipeline.users_per_run)

    return every_user
