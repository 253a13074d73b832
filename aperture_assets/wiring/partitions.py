"""Media-server users as Dagster dynamic partitions (keyed by server user id), and how they follow the server:
the `media_users` sensor and `aperture run` both apply `user_partition_changes`."""

from dagster import DagsterInstance, DynamicPartitionsDefinition

from aperture_assets.logic.watch_rows import enabled_user_ids, unknown_users, user_row, users_to_drop
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerClient, MediaServerError, MediaServerResource
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.settings import ConfigError
from aperture_resources.watch_store import missing_reads, sync_users

users_partitions = DynamicPartitionsDefinition(name="users")


def check_wanted_users(users: list[dict], wanted: list[str]) -> None:
    """A name in APERTURE_USERS that matches no user is a typo, not a user to drop: stop with the close names."""
    unknown = unknown_users(users, wanted)
    if unknown:
        said = "; ".join(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")
                         for name, close in unknown.items())
        raise ConfigError(f"APERTURE_USERS names no user on the media server: {said}.")


def read_users(client: MediaServerClient) -> list[dict]:
    """The server's users. An empty list is a bad read, not news (a server always has its admin): raise, so
    nothing is removed or counted as missing."""
    users = [u for u in client.users() if isinstance(u, dict) and u.get("Id")]
    if not users:
        raise MediaServerError(f"{client.kind} server listed no users; treating it as a bad read, nothing changed.")
    return users


def user_partition_changes(instance: DagsterInstance, media_server: MediaServerResource, database: DatabaseResource,
                           pipeline: PipelineConfig, users: list[dict] | None = None
                           ) -> tuple[list[str], list[str], list[str], int]:
    """Sync the users table from the server's users (read here unless given), and work out partition keys to add
    and remove. Returns (added, removed, enabled, user rows changed); a failed read raises before anything
    changes. A partition goes when its user is disabled or left out, or missing from APERTURE_USER_REMOVAL_READS
    reads."""
    if users is None:
        with media_server.client() as client:
            users = read_users(client)
    check_wanted_users(users, pipeline.wanted_users())
    enabled = enabled_user_ids(users, pipeline.wanted_users())
    current = set(instance.get_dynamic_partitions(users_partitions.name))
    with database.connect() as conn:
        changed = sync_users(conn, [user_row(u) for u in users])
        missing = missing_reads(conn, sorted(current - set(enabled)))
    drop, _ = users_to_drop(current, (str(u["Id"]) for u in users), enabled, missing, pipeline.user_removal_reads)
    return sorted(set(enabled) - current), sorted(drop), enabled, changed


def apply_user_partitions(instance: DagsterInstance, media_server: MediaServerResource, database: DatabaseResource,
                          pipeline: PipelineConfig) -> list[str]:
    """What the sensor does, applied at once (for one-shot runs); returns the enabled user ids."""
    added, removed, enabled, _ = user_partition_changes(instance, media_server, database, pipeline)
    if added:
        instance.add_dynamic_partitions(users_partitions.name, added)
    for key in removed:
        instance.delete_dynamic_partition(users_partitions.name, key)
    return enabled
