"""The aperture code location: assets, jobs, schedules and resources."""

from __future__ import annotations

from dagster import Definitions

from aperture_assets.catalog import series_catalog
from aperture_assets.jobs import JOBS, SCHEDULES
from aperture_assets.resources import build_resources

defs = Definitions(
    assets=[series_catalog],
    jobs=JOBS,
    schedules=SCHEDULES,
    resources=build_resources(),
)
