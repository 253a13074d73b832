"""Media-server users as Dagster dynamic partitions, and how they follow the server: the `media_users` sensor
and `aperture run` both apply `user_partition_changes`.

A partition key carries the user's name ("alice"; "alice-1a2b3c4d" when two names clash), given when the user is
first seen and kept when they are renamed, so an admin finds a user in the UI by name and a rename moves no
history. The stages work by user id: `RunUsers` maps a run's keys to ids."""

from dataclasses import dataclass
from functools import cached_property

from dagster import DagsterInstance, DynamicPartitionsDefinition

from aperture_assets.logic.names import partition_key
from aperture_assets.logic.watch_rows import enabled_user_ids, unknown_users, user_row, users_to_drop
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerClient, MediaServerError, MediaServerResource
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.settings import ConfigError
from aperture_resources.watch_store import (
    missing_reads,
    save_partition_keys,
    sync_users,
    user_ids_by_key,
    user_keys,
)

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


def assign_partition_keys(conn) -> dict[str, str]:
    """Every known user's partition key by id, giving one to each user who has none yet."""
    rows = user_keys(conn)
    keys = {user_id: key for user_id, _, key in rows if key}
    new = {}
    for user_id, name, key in rows:
        if not key:
            keys[user_id] = new[user_id] = partition_key(name, user_id, keys.values())
    if new:
        save_partition_keys(conn, new)
    return keys


def user_partition_changes(instance: DagsterInstance, media_server: MediaServerResource, database: DatabaseResource,
                           pipeline: PipelineConfig, users: list[dict] | None = None
                           ) -> tuple[list[str], list[str], list[str], int]:
    """Sync the users table from the server's users (read here unless given), and work out partition keys to add
    and remove. Returns (added, removed, enabled keys, user rows changed); a failed read raises before anything
    changes. A partition goes when its user is disabled or left out, or missing from APERTURE_USER_REMOVAL_READS
    reads; a partition keyed by a user's id (made before keys carried names) gives way to their named key."""
    if users is None:
        with media_server.client() as client:
            users = read_users(client)
    check_wanted_users(users, pipeline.wanted_users())
    current = set(instance.get_dynamic_partitions(users_partitions.name))
    with database.connect() as conn:
        changed = sync_users(conn, [user_row(u) for u in users])
        keys = assign_partition_keys(conn)
        ids = {key: user_id for user_id, key in keys.items()}
        enabled = [keys[user_id] for user_id in enabled_user_ids(users, pipeline.wanted_users())]
        renamed = {key for key in current if keys.get(key, key) != key}
        gone = sorted(current - set(enabled) - renamed)
        missing = {key: n for user_id, n in missing_reads(conn, [ids.get(k, k) for k in gone]).items()
                   for key in (keys.get(user_id, user_id),)}
    listed = {keys[str(u["Id"])] for u in users}
    drop, _ = users_to_drop(current - renamed, listed, enabled, missing, pipeline.user_removal_reads)
    return sorted(set(enabled) - current), sorted(drop | renamed), enabled, changed


def apply_user_partitions(instance: DagsterInstance, media_server: MediaServerResource, database: DatabaseResource,
                          pipeline: PipelineConfig) -> list[str]:
    """What the sensor does, applied at once (for one-shot runs); returns the enabled users' partition keys."""
    added, removed, enabled, _ = user_partition_changes(instance, media_server, database, pipeline)
    if added:
        instance.add_dynamic_partitions(users_partitions.name, added)
    for key in removed:
        instance.delete_dynamic_partition(users_partitions.name, key)
    return enabled


@dataclass(frozen=True)
class RunUsers:
    """The users a per-user run covers, in partition order: their keys and the server user ids behind them."""

    id_of: dict[str, str]

    @property
    def ids(self) -> list[str]:
        return list(self.id_of.values())

    @cached_property
    def key_of(self) -> dict[str, str]:
        return {uid: key for key, uid in self.id_of.items()}

    def key(self, user_id: str) -> str:
        return self.key_of[user_id]

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.key_of


def run_users(database: DatabaseResource, keys: list[str]) -> RunUsers:
    with database.connect() as conn:
        return RunUsers(user_ids_by_key(conn, keys))
