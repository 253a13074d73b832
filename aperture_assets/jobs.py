"""The spec's jobs by their names, each selecting its stage of the asset graph, with its schedule.

Per-user stages run as ONE run over all user partitions (a partition-range run; the assets use a
single-run backfill policy), so a schedule tick costs one process, not one per user.
"""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from aperture_assets.users import users_partitions

sync_series = define_asset_job(
    "sync_series",
    selection=AssetSelection.assets("series_catalog"),
    description="Import series, seasons and episodes from the media server (spec: sync-series).",
)

sync_series_watch_history = define_asset_job(
    "sync_series_watch_history",
    selection=AssetSelection.assets("series_watch_history"),
    partitions_def=users_partitions,
    description="Import what every enabled user watched (spec: sync-series-watch-history).",
)

generate_series_embeddings = define_asset_job(
    "generate_series_embeddings",
    selection=AssetSelection.assets("series_embeddings"),
    description="Embed new or changed series with the configured AI provider (spec: generate-series-embeddings).",
)

generate_series_recommendations = define_asset_job(
    "generate_series_recommendations",
    selection=AssetSelection.assets("series_recommendations"),
    partitions_def=users_partitions,
    description="Rank fresh picks for every enabled user (spec: generate-series-recommendations).",
)

evaluate_recommendations = define_asset_job(
    "evaluate_recommendations",
    selection=AssetSelection.assets("recommendation_quality"),
    description="Offline hold-out evaluation of the recommender against two baselines.",
)

sync_series_daily = ScheduleDefinition(
    name="sync_series_daily",
    job=sync_series,
    cron_schedule="0 2 * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily catalog sync (spec: Scheduled Daily).",
)

generate_series_embeddings_daily = ScheduleDefinition(
    name="generate_series_embeddings_daily",
    job=generate_series_embeddings,
    cron_schedule="0 3 * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily at 03:00, after the 02:00 catalog sync (spec: Scheduled Daily).",
)


def all_users_run(keys: list[str]) -> RunRequest | SkipReason:
    """One run covering every user partition."""
    if not keys:
        return SkipReason("no enabled users yet (the media_users sensor adds them)")
    return RunRequest(tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]})


@schedule(
    job=sync_series_watch_history,
    cron_schedule="0 */2 * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 2 hours, one run over all users (spec: Scheduled every 2 hours).",
)
def sync_series_watch_history_every_2h(context: ScheduleEvaluationContext):
    return all_users_run(context.instance.get_dynamic_partitions(users_partitions.name))


@schedule(
    job=generate_series_recommendations,
    cron_schedule="0 4 * * 1",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Weekly, Monday 04:00, one run over all users (spec: Scheduled Weekly).",
)
def generate_series_recommendations_weekly(context: ScheduleEvaluationContext):
    return all_users_run(context.instance.get_dynamic_partitions(users_partitions.name))


evaluate_recommendations_weekly = ScheduleDefinition(
    name="evaluate_recommendations_weekly",
    job=evaluate_recommendations,
    cron_schedule="30 4 * * 1",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Weekly quality report, after the recommendations.",
)

JOBS = [sync_series, sync_series_watch_history, generate_series_embeddings, generate_series_recommendations,
        evaluate_recommendations]
SCHEDULES = [sync_series_daily, sync_series_watch_history_every_2h, generate_series_embeddings_daily,
             generate_series_recommendations_weekly, evaluate_recommendations_weekly]
