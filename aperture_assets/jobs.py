"""The spec's jobs by their names, each selecting its stage of the asset graph, with its schedule."""

from __future__ import annotations

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

sync_series = define_asset_job(
    "sync_series",
    selection=AssetSelection.assets("series_catalog"),
    description="Import series, seasons and episodes from the media server (spec: sync-series).",
)

sync_series_daily = ScheduleDefinition(
    name="sync_series_daily",
    job=sync_series,
    cron_schedule="0 2 * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily catalog sync (spec: Scheduled Daily).",
)

JOBS = [sync_series]
SCHEDULES = [sync_series_daily]
