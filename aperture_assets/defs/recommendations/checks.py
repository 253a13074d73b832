"""The recommendations' data-quality check."""

from dagster import AssetCheckResult, MetadataValue, asset_check

from aperture_resources.database import DatabaseResource
from aperture_resources.recommendation_store import latest_picks, started_among, users_with_runs


@asset_check(asset="series_recommendations",
             description="No user's latest picks include a show they have started, caught up on or completed.")
def recommendations_exclude_started(database: DatabaseResource) -> AssetCheckResult:
    violations: dict[str, list[str]] = {}
    with database.connect() as conn:
        users = users_with_runs(conn)
        for user_id in users:
            picked = [pick.series_id for pick in latest_picks(conn, user_id)]
            bad = started_among(conn, user_id, picked)
            if bad:
                violations[user_id] = bad
    return AssetCheckResult(passed=not violations, metadata={
        "users_checked": len(users), "users_with_violations": len(violations),
        "violations": MetadataValue.json(violations)})
