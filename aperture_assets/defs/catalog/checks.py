"""The catalog's data-quality check.

It is blocking: if the server suddenly lists far fewer series (a library unmounted, a
scan in progress), downstream assets in the same run stop and the automation conditions of later
runs wait, instead of embedding, recommending and rebuilding libraries from a half-empty catalog.
"""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetKey, MetadataValue, asset_check

from aperture_resources.catalog_store import active_count
from aperture_resources.database import DatabaseResource
from aperture_resources.pipeline_config import PipelineConfig


def removed_share(metadata: dict) -> float:
    """Share of the previously active series that the latest sync marked removed."""
    removed = int(metadata.get("series_removed", 0))
    before = int(metadata.get("series_total", 0)) + removed - int(metadata.get("series_new", 0)) \
        - int(metadata.get("series_restored", 0))
    return removed / before if before > 0 else 0.0


@asset_check(asset="series_catalog", blocking=True,
             description="The catalog is not empty, no more than APERTURE_MASS_REMOVAL_THRESHOLD (default 25%) "
             "of it vanished in one sync and no library lost more than that share of its series; blocks "
             "downstream assets otherwise.")
def catalog_not_empty_and_no_mass_removal(context: AssetCheckExecutionContext, database: DatabaseResource,
                                          pipeline: PipelineConfig) -> AssetCheckResult:
    with database.connect() as conn:
        active = active_count(conn, "series")
    event = context.instance.get_latest_materialization_event(AssetKey("series_catalog"))
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()} \
        if event and event.asset_materialization else {}
    share, threshold = removed_share(metadata), pipeline.mass_removal_threshold
    shrunk = list(metadata.get("shrunken_libraries") or [])
    return AssetCheckResult(
        passed=active > 0 and share <= threshold and not shrunk,
        metadata={"active_series": active, "removed_share": round(share, 4), "threshold": threshold,
                  "series_removed": int(metadata.get("series_removed", 0)),
                  "shrunken_libraries": MetadataValue.json(shrunk),
                  "what_to_do": MetadataValue.md(
                      "If the removals are real, raise APERTURE_MASS_REMOVAL_THRESHOLD for one run; otherwise "
                      "check the server's libraries are mounted and scanned, then re-run sync_series.")},
    )

