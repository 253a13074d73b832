"""`media_users`: keeps the `users` partitions in step with the server's enabled users, and closes the gap a
new server user would open: a user created between runs can see every library, picks libraries included,
so each tick gives such users an explicit list at once (the same rule the library stage applies)."""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor

from aperture_assets.wiring.jobs import media_server_missing
from aperture_assets.wiring.log_redaction import redact_logs
from aperture_assets.wiring.partitions import read_users, user_partition_changes, users_partitions
from aperture_resources.access_store import all_folders_users, record_access
from aperture_resources.database import DatabaseResource
from aperture_resources.library.resource import LibraryResource, short_id
from aperture_resources.library.server_sync import enforce_privacy
from aperture_resources.media_server import MediaServerResource
from aperture_resources.pipeline_config import PipelineConfig


def restrict_new_users(library: LibraryResource, database: DatabaseResource, users: list[dict]) -> int:
    """Apply the privacy rule to every user while picks libraries exist; returns the policies changed. A refused
    update raises (naming the user) after the other users were handled."""
    with library.media_server.client() as client:
        folders = client.libraries()
        if not any(library.owner_of_library(f) is not None for f in folders):
            return 0  # no picks library yet: the library stage applies the rule before it creates one
        with database.connect() as conn:
            see_all = all_folders_users(conn)
        privacy = enforce_privacy(client, users, folders, library.owner_of_library, short_id, see_all)
    with database.connect() as conn:
        record_access(conn, privacy.had_all_folders)
    privacy.raise_if_failed()
    return len(privacy.updated)


@sensor(
    name="media_users",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=300,
    description="Adds a `users` partition per enabled media-server user (keyed by the user's name, kept when "
    "they are renamed), removes "
    "partitions of users who were disabled, left out by APERTURE_USERS or gone for APERTURE_USER_REMOVAL_READS "
    "reads, and gives users who can see every library an explicit list that hides other users' picks.",
)
def media_users_sensor(
    context: SensorEvaluationContext,
    media_server: MediaServerResource,
    database: DatabaseResource,
    pipeline: PipelineConfig,
    library: LibraryResource,
):
    redact_logs(context.log)
    if skip := media_server_missing(media_server):
        return skip
    with media_server.client() as client:
        users = read_users(client)  # one read serves both
    added, removed, enabled, changed = user_partition_changes(context.instance, media_server, database, pipeline,
                                                              users)
    restricted = restrict_new_users(library, database, users)
    if restricted:
        context.log.info("restricted the library access of %d users", restricted)
    if not (added or removed):
        return SkipReason(f"{len(enabled)} enabled users, no partition change ({changed} user rows updated, "
                          f"{restricted} policies restricted)")
    context.log.info("users partitions: +%s -%s", added, removed)
    requests = []
    if added:
        requests.append(users_partitions.build_add_request(added))
    if removed:
        requests.append(users_partitions.build_delete_request(removed))
    return SensorResult(dynamic_partitions_requests=requests)
