"""`media_users`: keeps the `users` partitions in step with the server's enabled users."""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor

from aperture_assets.wiring.partitions import user_partition_changes, users_partitions
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerResource
from aperture_resources.pipeline_config import PipelineConfig


@sensor(
    name="media_users",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=300,
    description="Adds a `users` partition per enabled media-server user (keyed by server user id) and removes "
    "partitions of users who were deleted, disabled or left out by APERTURE_USERS.",
)
def media_users_sensor(
    context: SensorEvaluationContext,
    media_server: MediaServerResource,
    database: DatabaseResource,
    pipeline: PipelineConfig,
):
    added, removed, enabled, changed = user_partition_changes(context.instance, media_server, database, pipeline)
    if not (added or removed):
        return SkipReason(f"{len(enabled)} enabled users, no partition change ({changed} user rows updated)")
    context.log.info("users partitions: +%s -%s", added, removed)
    requests = []
    if added:
        requests.append(users_partitions.build_add_request(added))
    if removed:
        requests.append(users_partitions.build_delete_request(removed))
    return SensorResult(dynamic_partitions_requests=requests)
