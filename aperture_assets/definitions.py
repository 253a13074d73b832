"""The aperture code location (workspace.yaml and `dagster dev -m` load this module).

Importing it, or any module under `defs/`, reads no environment. Dagster calls `defs()` when it loads the
location: that reads the settings once (a wrong value fails the load with its one sentence), collects every
asset, check, job, schedule and sensor under `aperture_assets/defs/` with Dagster's `load_from_defs_folder`
(no hand-kept list), puts the schedules in APERTURE_TIMEZONE and binds the resources built from the same
settings.
"""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from aperture_assets.wiring.dagster_internals import in_timezone
    from aperture_assets.wiring.resources import build_resources
    from aperture_resources.settings import load_settings

    settings = load_settings()
    found = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return dg.Definitions(
        assets=found.assets, asset_checks=found.asset_checks, jobs=found.jobs, sensors=found.sensors,
        schedules=[in_timezone(schedule, settings.timezone) for schedule in found.schedules or []],
        resources=build_resources(settings))
