"""The aperture code location: assets, jobs, schedules, sensors and resources."""

from dagster import Definitions

from aperture_assets.catalog import series_catalog
from aperture_assets.embeddings import every_series_has_a_vector, series_embeddings
from aperture_assets.jobs import JOBS, SCHEDULES
from aperture_assets.quality import recommendation_quality
from aperture_assets.recommendations import recommendations_exclude_started, series_recommendations
from aperture_assets.resources import build_resources
from aperture_assets.users import media_users_sensor
from aperture_assets.watch_history import series_watch_history

defs = Definitions(
    assets=[series_catalog, series_watch_history, series_embeddings, series_recommendations, recommendation_quality],
    asset_checks=[every_series_has_a_vector, recommendations_exclude_started],
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=[media_users_sensor],
    resources=build_resources(),
)
