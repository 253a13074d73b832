"""The aperture code location: assets, checks, jobs, schedules, sensors and resources."""

from dagster import Definitions

from aperture_assets.automation import automation_sensor, with_automation
from aperture_assets.catalog import series_catalog
from aperture_assets.checks import CHECKS
from aperture_assets.embeddings import series_embeddings
from aperture_assets.jobs import JOBS, SCHEDULES
from aperture_assets.library import series_library
from aperture_assets.quality import recommendation_quality
from aperture_assets.recommendations import series_recommendations
from aperture_assets.resources import build_resources
from aperture_assets.retention import purge_old_runs, purge_old_runs_schedule
from aperture_assets.sensors import media_library_changes
from aperture_assets.users import media_users_sensor
from aperture_assets.watch_history import series_watch_history

defs = Definitions(
    assets=with_automation([series_catalog, series_embeddings, series_watch_history, series_recommendations,
                            series_library, recommendation_quality]),
    asset_checks=CHECKS,
    jobs=[*JOBS, purge_old_runs],
    schedules=[*SCHEDULES, purge_old_runs_schedule],
    sensors=[media_users_sensor, media_library_changes, automation_sensor],
    resources=build_resources(),
)
