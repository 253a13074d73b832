"""Media-server users as Dagster dynamic partitions, kept in sync by the `media_users` sensor."""

from dagster import (
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from aperture_assets.watch_rows import enabled_user_ids, user_row
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerResource
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.watch_store import sync_users

users_partitions = DynamicPartitionsDefinition(name="users")


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
    with media_server.client() as client:
        users = client.users()  # a failed read raises: partitions and the users table stay as they were
    rows = [user_row(u) for u in users if isinstance(u, dict) and u.get("Id")]
    with database.connect() as conn:
        changed = sync_users(conn, rows)
    enabled = set(enabled_user_ids(users, pipeline.wanted_users()))
    current = set(context.instance.get_dynamic_partitions(users_partitions.name))
    added, removed = sorted(enabled - current), sorted(current - enabled)
    if not (added or removed):
        return SkipReason(f"{len(enabled)} enabled users, no partition change ({changed} user rows updated)")
    context.log.info("users partitions: +%s -%s", added, removed)
    requests = []
    if added:
        requests.append(users_partitions.build_add_request(added))
    if removed:
        requests.append(users_partitions.build_delete_request(removed))
    return SensorResult(dynamic_partitions_requests=requests)
