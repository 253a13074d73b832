"""SQL for an admin's per-user genre and tag rules (`user_preferences`, migration 0007), set with
`aperture user NAME ...` and read by the recommendations stage, plus the one rule combining them with the
global APERTURE_EXCLUDE_GENRES / APERTURE_EXCLUDE_TAGS, so the CLI shows exactly what the stage applies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class UserPreferences:
    """One user's rules, spelled as the catalog spells them. `include_genres` lets a globally excluded genre
    back in for this user only."""

    user_id: str
    exclude_genres: list[str] = field(default_factory=list)
    include_genres: list[str] = field(default_factory=list)
    exclude_tags: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.exclude_genres or self.include_genres or self.exclude_tags)


def load_preferences(conn: psycopg.Connection, user_ids: Iterable[str]) -> dict[str, UserPreferences]:
    """Rules for each of `user_ids`; a user without a row gets empty lists, so callers never special-case one."""
    wanted = list(dict.fromkeys(user_ids))
    with conn.cursor(row_factory=class_row(UserPreferences)) as cur:
        rows = cur.execute("SELECT user_id, exclude_genres, include_genres, exclude_tags FROM user_preferences "
                           "WHERE user_id = ANY(%s)", (wanted,)).fetchall()
    found = {row.user_id: row for row in rows}
    return {user_id: found.get(user_id) or UserPreferences(user_id) for user_id in wanted}


def save_preferences(conn: psycopg.Connection, prefs: UserPreferences) -> None:
    """Replace the user's rules (insert or update)."""
    conn.execute(
        "INSERT INTO user_preferences (user_id, exclude_genres, include_genres, exclude_tags, updated_at) "
        "VALUES (%s, %s::text[], %s::text[], %s::text[], now()) ON CONFLICT (user_id) DO UPDATE SET "
        "exclude_genres = EXCLUDED.exclude_genres, include_genres = EXCLUDED.include_genres, "
        "exclude_tags = EXCLUDED.exclude_tags, updated_at = now()",
        (prefs.user_id, list(prefs.exclude_genres), list(prefs.include_genres), list(prefs.exclude_tags)))


def delete_preferences(conn: psycopg.Connection, user_id: str) -> bool:
    """Drop the user's rules (back to the global ones alone); True if there were any."""
    return conn.execute("DELETE FROM user_preferences WHERE user_id = %s", (user_id,)).rowcount > 0


def catalog_genres(conn: psycopg.Connection) -> list[str]:
    """Every genre of a series still in the catalog, the commonest spelling of a name first (case-insensitive
    duplicates are kept: the first is the one to store)."""
    return [row[0] for row in conn.execute(
        "SELECT v FROM series, unnest(genres) AS v WHERE removed_at IS NULL AND btrim(v) <> '' "
        "GROUP BY v ORDER BY lower(v), count(*) DESC, v")]


def catalog_tags(conn: psycopg.Connection) -> list[str]:
    """Every tag of a series still in the catalog, ordered like `catalog_genres`."""
    return [row[0] for row in conn.execute(
        "SELECT v FROM series, unnest(tags) AS v WHERE removed_at IS NULL AND btrim(v) <> '' "
        "GROUP BY v ORDER BY lower(v), count(*) DESC, v")]


def effective_exclusions(prefs: UserPreferences, global_genres: Iterable[str],
                         global_tags: Iterable[str]) -> tuple[set[str], set[str]]:
    """(genres, tags) never picked for this user, lower-cased: the global genres minus the ones the user let
    back in, plus the user's own; the global tags plus the user's own. Case-insensitive because the settings
    are typed by hand while the catalog spells names its own way."""
    included = {_key(g) for g in prefs.include_genres}
    genres = ({_key(g) for g in global_genres} - included) | {_key(g) for g in prefs.exclude_genres}
    tags = {_key(t) for t in global_tags} | {_key(t) for t in prefs.exclude_tags}
    return genres - {""}, tags - {""}


def _key(name: str) -> str:
    return name.strip().lower()
