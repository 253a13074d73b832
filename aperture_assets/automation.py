"""How the graph keeps itself current between the spec's schedules (declarative automation).

- New series reach the catalog (daily sync or the library-change sensor) -> they are embedded at
  once, not at 03:00 (eager), unless the catalog's blocking check failed.
- A user appears on the server (the media_users sensor adds a partition) -> their history and picks
  are built without waiting for a schedule (on_missing).
- A user's picks change (weekly schedule, new user, manual backfill) -> their library is rebuilt
  right after (eager): "libraries right after recommendations", not a guessed cron offset.
The schedules in jobs.py stay the spec's cadence; these conditions only add what follows upstream.
"""

from collections.abc import Sequence

from dagster import (
    AssetsDefinition,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    map_asset_specs,
)

FOLLOW_UPSTREAM = AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
CONDITIONS = {
    "series_embeddings": FOLLOW_UPSTREAM,
    "series_watch_history": AutomationCondition.on_missing(),
    "series_recommendations": AutomationCondition.on_missing(),
    "series_library": FOLLOW_UPSTREAM,
}


def with_automation(assets: Sequence[AssetsDefinition]) -> list[AssetsDefinition]:
    """The assets with their automation conditions attached."""
    return map_asset_specs(
        lambda spec: spec.replace_attributes(automation_condition=CONDITIONS[spec.key.to_user_string()])
        if spec.key.to_user_string() in CONDITIONS else spec,
        assets,
    )


automation_sensor = AutomationConditionSensorDefinition(
    "aperture_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,  # Dagster's default automation sensor starts stopped
    minimum_interval_seconds=60,
    description="Evaluates the assets' automation conditions (new series embedded, new users built, libraries "
    "rebuilt after their recommendations change).",
)
