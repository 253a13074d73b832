"""Media-server users as Dagster dynamic partitions, kept in sync by the `media_users` sensor."""

from dagster import (
    DagsterInstance,
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


def user_partition_changes(instance: DagsterInstance, media_server: MediaServerResource, database: DatabaseResource,
                           pipeline: PipelineConfig) -> tuple[list[str], list[str], list[str], int]:
    """Read the server's users, sync the users table, and work out partition keys to add and remove.
    Returns (added, removed, enabled, user rows changed); a failed read raises before anything changes."""
    with media_server.client() as client:
        users = client.users()
    rows = [user_row(u) for u in users if isinstance(u, dict) and u.get("Id")]
    with database.connect() as conn:
        changed = sync_users(conn, rows)
    enabled = enabled_user_ids(users, pipeline.wanted_users())
    current = set(instance.get_dynamic_partitions(users_partitions.name))
    return sorted(set(enabled) - current), sorted(current - set(enabled)), enabled, changed


def apply_user_partitions(instance: DagsterInstance, media_server: MediaServerResource, database: DatabaseResource,
                          pipeline: PipelineConfig) -> list[str]:
    """What the sensor does, applied at once (for one-shot runs); returns the enabled user ids."""
    added, removed, enabled, _ = user_partition_changes(instance, media_server, database, pipeline)
    if added:
        instance.add_dynamic_partitions(users_partitions.name, added)
    for key in removed:
        instance.delete_dynamic_partition(users_partitions.name, key)
    return enabled
