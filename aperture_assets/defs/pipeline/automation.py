"""The sensor that evaluates the assets' automation conditions (see wiring/automation.py)."""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

aperture_automation = AutomationConditionSensorDefinition(
    "aperture_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,  # Dagster's default automation sensor starts stopped
    minimum_interval_seconds=60,
    description="Evaluates the assets' automation conditions (new series embedded, new users built, libraries "
    "rebuilt after their recommendations change).",
)
