"""The spec's jobs by their names, each selecting its stage of the asset graph, with its schedule.

Per-user stages run as ONE run over all user partitions (a partition-range run; the assets use a
single-run backfill policy), so a schedule tick costs one process, not one per user. Every job
retries a failed step with exponential backoff (transient server or provider trouble); errors a user
must fix (ConfigError) are not retried. Schedules run in APERTURE_TIMEZONE (default UTC).
"""

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagster import (
    AssetSelection,
    Backoff,
    DefaultScheduleStatus,
    Jitter,
    RetryPolicy,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from aperture_assets.users import users_partitions
from aperture_resources.settings import ConfigError

RETRY = RetryPolicy(max_retries=3, delay=15, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
STAGE_ASSETS = ("series_catalog", "series_embeddings", "series_watch_history", "series_recommendations",
                "series_library")


def timezone() -> str:
    """APERTURE_TIMEZONE, checked, so a typo is one clear sentence instead of a daemon traceback."""
    name = os.environ.get("APERTURE_TIMEZONE") or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"APERTURE_TIMEZONE must be an IANA time zone such as Europe/Berlin (got {name!r}).") \
            from None
    return name


def asset_job(name: str, assets: tuple[str, ...], description: str, per_user: bool = True):
    # dagster.yaml lets one run tagged as a library stage run at a time (two would race on the server's libraries)
    tags = {"aperture/stage": "library"} if "series_library" in assets else None
    return define_asset_job(name, selection=AssetSelection.assets(*assets), description=description,
                            partitions_def=users_partitions if per_user else None, op_retry_policy=RETRY, tags=tags)


sync_series = asset_job("sync_series", ("series_catalog",),
                        "Import series, seasons and episodes from the media server (spec: sync-series).", False)
generate_series_embeddings = asset_job(
    "generate_series_embeddings", ("series_embeddings",),
    "Embed new or changed series with the configured AI provider (spec: generate-series-embeddings).", False)
sync_series_watch_history = asset_job("sync_series_watch_history", ("series_watch_history",),
                                      "Import what every enabled user watched (spec: sync-series-watch-history).")
generate_series_recommendations = asset_job(
    "generate_series_recommendations", ("series_recommendations",),
    "Rank fresh picks for every enabled user (spec: generate-series-recommendations).")
sync_series_libraries = asset_job(
    "sync_series_libraries", ("series_library",),
    "Write every enabled user's picks library and refresh it on the server (spec: sync-series-libraries).")
full_refresh = asset_job(
    "full_refresh", STAGE_ASSETS,
    "The whole pipeline in the spec's Job Order (catalog, embeddings, history, picks, libraries) in one run.")
evaluate_recommendations = asset_job("evaluate_recommendations", ("recommendation_quality",),
                                     "Offline hold-out evaluation of the recommender against two baselines.", False)


def all_users_run(keys: list[str]) -> RunRequest | SkipReason:
    """One run covering every user partition."""
    if not keys:
        return SkipReason("no enabled users yet (the media_users sensor adds them)")
    return RunRequest(tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]})


def cron(job, cron_schedule: str, description: str) -> ScheduleDefinition:
    return ScheduleDefinition(name=f"{job.name}_schedule", job=job, cron_schedule=cron_schedule,
                              execution_timezone=timezone(), default_status=DefaultScheduleStatus.RUNNING,
                              description=description)


def per_user_schedule(job, cron_schedule: str, description: str) -> ScheduleDefinition:
    @schedule(name=f"{job.name}_schedule", job=job, cron_schedule=cron_schedule, execution_timezone=timezone(),
              default_status=DefaultScheduleStatus.RUNNING, description=description)
    def every_user(context: ScheduleEvaluationContext):
        return all_users_run(context.instance.get_dynamic_partitions(users_partitions.name))

    return every_user


JOBS = [sync_series, generate_series_embeddings, sync_series_watch_history, generate_series_recommendations,
        sync_series_libraries, full_refresh, evaluate_recommendations]
SCHEDULES = [
    cron(sync_series, "0 2 * * *", "Daily at 02:00 (spec: sync-series, daily)."),
    cron(generate_series_embeddings, "0 3 * * *", "Daily at 03:00 (spec: generate-series-embeddings, 3 AM)."),
    per_user_schedule(sync_series_watch_history, "0 */2 * * *",
                      "Every 2 hours, one run over all users (spec: sync-series-watch-history)."),
    per_user_schedule(generate_series_recommendations, "0 4 * * 1",
                      "Weekly, Monday 04:00, one run over all users (spec: generate-series-recommendations); "
                      "each user's library follows by automation."),
    cron(evaluate_recommendations, "30 4 * * 1", "Weekly quality report, after the recommendations."),
]
