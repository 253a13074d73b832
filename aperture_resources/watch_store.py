"""SQL for users and watch history: diff-based per-user writes and the derived series progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

import psycopg
from psycopg.rows import class_row, scalar_row

USER_COLUMNS = ("id", "name", "is_disabled", "is_admin", "last_activity_at")


@dataclass(frozen=True)
class SeriesProviderIds:
    """A catalog series' provider ids (shared by every copy of the show)."""

    id: str
    tvdb_id: str | None
    tmdb_id: str | None
    imdb_id: str | None


@dataclass(frozen=True)
class SeriesProgress:
    """A user's progress on one series, as the UI lists it."""

    name: str
    state: str
    episodes_watched: int
    episodes_available: int
    percent: float
    last_watched_at: datetime | None


@dataclass(frozen=True)
class WatchSync:
    """A user's last writing sync: the picks root it excluded, its last full read, the catalog it saw, the digest
    of what it read (None: never skip) and how many of its items matched no catalog episode."""

    exclude_root: str
    full_read_at: datetime
    catalog_removals: str
    catalog_version: str
    read_digest: str | None = None
    unmatched_items: int = 0


@dataclass(frozen=True)
class CatalogVersion:
    """Fingerprints of the catalog: its episode removals, and everything series progress depends on."""

    removals: str
    version: str


@dataclass(frozen=True)
class PlayedItem:
    """A server item in the user's stored played set (server item ids, not catalog ids)."""

    item_id: str
    play_count: int
    last_played_at: datetime | None
    position_ticks: int
    played_percentage: float | None
    series_id: str | None
    season_number: int | None
    episode_number: int | None
    tvdb_id: str | None
    tmdb_id: str | None
    imdb_id: str | None
    excluded: bool


def sync_users(conn: psycopg.Connection, rows: Sequence[tuple]) -> int:
    """Upsert server users from one successful read; a user not in it gets removed_at and one more missing read
    (listed again: back to zero). Returns rows changed."""
    ids = [r[0] for r in rows]
    changed = conn.execute(
        """
        INSERT INTO media_users (id, name, is_disabled, is_admin, last_activity_at)
        SELECT * FROM unnest(%s::text[], %s::text[], %s::bool[], %s::bool[], %s::timestamptz[])
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, is_disabled = EXCLUDED.is_disabled,
            is_admin = EXCLUDED.is_admin, last_activity_at = EXCLUDED.last_activity_at,
            removed_at = NULL, missing_reads = 0, updated_at = now()
        WHERE (media_users.name, media_users.is_disabled, media_users.is_admin, media_users.last_activity_at,
               media_users.removed_at IS NULL, media_users.missing_reads)
              IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.is_disabled, EXCLUDED.is_admin,
               EXCLUDED.last_activity_at, true, 0)
        """,
        [list(col) for col in zip(*rows, strict=True)] if rows else [[], [], [], [], []],
    ).rowcount
    changed += conn.execute(
        "UPDATE media_users SET removed_at = coalesce(removed_at, now()), missing_reads = missing_reads + 1 "
        "WHERE NOT (id = ANY(%s))", (ids,)
    ).rowcount
    return changed


def user_keys(conn: psycopg.Connection) -> list[tuple[str, str, str | None]]:
    """(id, name, partition key or None) of every user the server has listed, in name order."""
    return conn.execute("SELECT id, name, partition_key FROM media_users ORDER BY name, id").fetchall()


def save_partition_keys(conn: psycopg.Connection, keys: dict[str, str]) -> None:
    """Give users their partition keys (by id)."""
    conn.execute("UPDATE media_users u SET partition_key = k.key FROM unnest(%s::text[], %s::text[]) AS k(id, key) "
                 "WHERE u.id = k.id", (list(keys), list(keys.values())))


def user_ids_by_key(conn: psycopg.Connection, keys: Sequence[str]) -> dict[str, str]:
    """The user id each partition key stands for; a key no user holds is taken as a user id (partitions made
    before keys carried names, and tests that key partitions by id)."""
    rows = conn.execute("SELECT partition_key, id FROM media_users WHERE partition_key = ANY(%s)",
                        (list(keys),)).fetchall()
    held = dict(rows)
    return {key: held.get(key, key) for key in keys}


def known_user_ids(conn: psycopg.Connection) -> set[str]:
    """Every user the server has ever listed."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return set(cur.execute("SELECT id FROM media_users"))


def missing_reads(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, int]:
    """How many successful user reads in a row have not listed each of these users (unknown users: 0)."""
    rows = conn.execute("SELECT id, missing_reads FROM media_users WHERE id = ANY(%s)", (list(ids),)).fetchall()
    return {user_id: count for user_id, count in rows}


def known_episode_ids(conn: psycopg.Connection, ids: Sequence[str]) -> set[str]:
    with conn.cursor(row_factory=scalar_row) as cur:
        return set(cur.execute("SELECT id FROM episodes WHERE id = ANY(%s) AND removed_at IS NULL", (list(ids),)))


def known_series_ids(conn: psycopg.Connection, ids: Sequence[str]) -> set[str]:
    with conn.cursor(row_factory=scalar_row) as cur:
        return set(cur.execute("SELECT id FROM series WHERE id = ANY(%s) AND removed_at IS NULL", (list(ids),)))


def series_provider_ids(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, SeriesProviderIds]:
    """Provider ids of the given catalog series (removed ones included), by series id."""
    with conn.cursor(row_factory=class_row(SeriesProviderIds)) as cur:
        rows = cur.execute("SELECT id, tvdb_id, tmdb_id, imdb_id FROM series WHERE id = ANY(%s)", (list(ids),))
        return {r.id: r for r in rows}


def match_by_provider(conn: psycopg.Connection, keys: Sequence[tuple]) -> dict[int, str]:
    """Map (index, tvdb, tmdb, imdb, season, episode, path) keys onto active catalog episodes of any copy of
    the show (duplicate copies share provider ids, not item ids), preferring the copy holding the same file.
    Season/episode None = match the series."""
    if not keys:
        return {}
    cols = [list(c) for c in zip(*keys, strict=True)]
    rows = conn.execute(
        """
        SELECT DISTINCT ON (k.idx) k.idx, coalesce(e.id, s.id)
        FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[], %s::int[], %s::int[], %s::text[])
             AS k(idx, tvdb, tmdb, imdb, season, episode, path)
        JOIN series s ON s.removed_at IS NULL
             AND (s.tvdb_id = k.tvdb OR s.tmdb_id = k.tmdb OR s.imdb_id = k.imdb)
        LEFT JOIN episodes e ON k.episode IS NOT NULL AND e.series_id = s.id AND e.removed_at IS NULL
             AND e.season_number = k.season AND e.episode_number = k.episode
        WHERE k.episode IS NULL OR e.id IS NOT NULL
        ORDER BY k.idx, (k.path IS NOT NULL AND coalesce(e.path, s.path) = k.path) DESC, s.id, e.id
        """,
        cols,
    )
    return {idx: target for idx, target in rows}


def write_user_history(
    conn: psycopg.Connection,
    user_id: str,
    episode_rows: Sequence[tuple],
    favorite_series: Sequence[str],
    state_of: Callable[[int, int, bool, str | None], str],
    progress_current: bool = False,
) -> dict[str, int]:
    """Replace the user's stored state with what the server reported, touching only rows that differ,
    then re-derive series progress (skipped if no row changed and the caller knows the stored progress
    is current for the catalog: `progress_current`). Rows: (episode_id, played, play_count,
    last_played_at, position_ticks, played_percentage, is_favorite)."""
    cols = [list(c) for c in zip(*episode_rows, strict=True)] if episode_rows else [[]] * 7
    upserted = conn.execute(
        """
        INSERT INTO episode_watch_state AS w (user_id, episode_id, played, play_count, last_played_at,
                                              position_ticks, played_percentage, is_favorite)
        SELECT %s, * FROM unnest(%s::text[], %s::bool[], %s::int[], %s::timestamptz[], %s::bigint[],
                                 %s::real[], %s::bool[])
        ON CONFLICT (user_id, episode_id) DO UPDATE SET played = EXCLUDED.played,
            play_count = EXCLUDED.play_count, last_played_at = EXCLUDED.last_played_at,
            position_ticks = EXCLUDED.position_ticks, played_percentage = EXCLUDED.played_percentage,
            is_favorite = EXCLUDED.is_favorite, updated_at = now()
        WHERE (w.played, w.play_count, w.last_played_at, w.position_ticks, w.played_percentage, w.is_favorite)
              IS DISTINCT FROM (EXCLUDED.played, EXCLUDED.play_count, EXCLUDED.last_played_at,
               EXCLUDED.position_ticks, EXCLUDED.played_percentage, EXCLUDED.is_favorite)
        """,
        [user_id, *cols],
    ).rowcount
    cleared = conn.execute(
        "DELETE FROM episode_watch_state WHERE user_id = %s AND NOT (episode_id = ANY(%s))",
        (user_id, cols[0]),
    ).rowcount
    favorites = conn.execute(
        "INSERT INTO series_favorites (user_id, series_id) SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING",
        (user_id, list(favorite_series)),
    ).rowcount
    favorites += conn.execute(
        "DELETE FROM series_favorites WHERE user_id = %s AND NOT (series_id = ANY(%s))",
        (user_id, list(favorite_series)),
    ).rowcount
    unchanged = progress_current and not (upserted or cleared or favorites)
    progress = 0 if unchanged else refresh_series_progress(conn, user_id, state_of)
    return {"episodes_changed": upserted, "episodes_cleared": cleared, "favorites_changed": favorites,
            "progress_changed": progress}


def replace_dislikes(conn: psycopg.Connection, user_id: str, series_ids: Sequence[str]) -> int:
    """Make the user's stored dislikes exactly `series_ids`; returns the rows added or removed."""
    added = conn.execute(
        "INSERT INTO series_dislikes (user_id, series_id) SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING",
        (user_id, list(series_ids))).rowcount
    return added + conn.execute("DELETE FROM series_dislikes WHERE user_id = %s AND NOT (series_id = ANY(%s))",
                                (user_id, list(series_ids))).rowcount


def refresh_series_progress(
    conn: psycopg.Connection, user_id: str, state_of: Callable[[int, int, bool, str | None], str]
) -> int:
    """Re-derive the user's per-series progress from episode state (specials don't count)."""
    rows = conn.execute(
        """
        WITH ws AS (
            SELECT e.series_id,
                   count(*) FILTER (WHERE w.played AND e.season_number IS DISTINCT FROM 0
                                    AND e.removed_at IS NULL) AS watched,
                   bool_or(NOT w.played AND w.position_ticks > 0) AS resuming,
                   max(w.play_count) AS max_plays,
                   max(w.last_played_at) AS last_watched
            FROM episode_watch_state w
            -- one index lookup per watched episode: a plain join lets the planner read all episodes
            CROSS JOIN LATERAL (SELECT series_id, season_number, removed_at FROM episodes
                                WHERE id = w.episode_id LIMIT 1) e
            WHERE w.user_id = %(u)s
            GROUP BY e.series_id
        ), fav AS (
            SELECT series_id FROM series_favorites WHERE user_id = %(u)s
        ), ids AS (
            SELECT series_id FROM ws UNION SELECT series_id FROM fav
        ), avail AS (
            SELECT ids.series_id, a.available FROM ids CROSS JOIN LATERAL (
                SELECT count(*) AS available FROM episodes e
                WHERE e.series_id = ids.series_id AND e.removed_at IS NULL
                  AND e.season_number IS DISTINCT FROM 0) a
        )
        SELECT ids.series_id, coalesce(ws.watched, 0), coalesce(avail.available, 0), coalesce(ws.resuming, false),
               coalesce(ws.max_plays, 0), ws.last_watched, fav.series_id IS NOT NULL, s.status
        FROM ids JOIN series s ON s.id = ids.series_id
        LEFT JOIN ws USING (series_id) LEFT JOIN avail USING (series_id) LEFT JOIN fav USING (series_id)
        """,
        {"u": user_id},
    ).fetchall()
    progress = [
        (sid, watched, available, round(100.0 * min(watched, available) / available, 1) if available else 0.0,
         plays, last, fav, state_of(watched, available, resuming, status))
        for sid, watched, available, resuming, plays, last, fav, status in rows
    ]
    cols = [list(c) for c in zip(*progress, strict=True)] if progress else [[]] * 8
    changed = conn.execute(
        """
        INSERT INTO series_progress AS p (user_id, series_id, episodes_watched, episodes_available, percent,
                                          max_play_count, last_watched_at, is_favorite, state)
        SELECT %s, * FROM unnest(%s::text[], %s::int[], %s::int[], %s::real[], %s::int[], %s::timestamptz[],
                                 %s::bool[], %s::text[])
        ON CONFLICT (user_id, series_id) DO UPDATE SET episodes_watched = EXCLUDED.episodes_watched,
            episodes_available = EXCLUDED.episodes_available, percent = EXCLUDED.percent,
            max_play_count = EXCLUDED.max_play_count, last_watched_at = EXCLUDED.last_watched_at,
            is_favorite = EXCLUDED.is_favorite, state = EXCLUDED.state, updated_at = now()
        WHERE (p.episodes_watched, p.episodes_available, p.percent, p.max_play_count, p.last_watched_at,
               p.is_favorite, p.state)
              IS DISTINCT FROM (EXCLUDED.episodes_watched, EXCLUDED.episodes_available, EXCLUDED.percent,
               EXCLUDED.max_play_count, EXCLUDED.last_watched_at, EXCLUDED.is_favorite, EXCLUDED.state)
        """,
        [user_id, *cols],
    ).rowcount
    changed += conn.execute(
        "DELETE FROM series_progress WHERE user_id = %s AND NOT (series_id = ANY(%s))", (user_id, cols[0])
    ).rowcount
    return changed


def user_summary(conn: psycopg.Connection, user_id: str,
                 top: int = 10) -> tuple[dict[str, int], list[SeriesProgress]]:
    """(series per state, top series by progress) for the UI."""
    states = dict(conn.execute(
        "SELECT state, count(*) FROM series_progress WHERE user_id = %s GROUP BY state", (user_id,)
    ).fetchall())
    with conn.cursor(row_factory=class_row(SeriesProgress)) as cur:
        rows = cur.execute(
            """
            SELECT s.name, p.state, p.episodes_watched, p.episodes_available, p.percent, p.last_watched_at
            FROM series_progress p JOIN series s ON s.id = p.series_id
            WHERE p.user_id = %s ORDER BY p.percent DESC, p.last_watched_at DESC NULLS LAST, s.name LIMIT %s
            """,
            (user_id, top),
        ).fetchall()
    return states, rows


# -- incremental watch sync: the played set S per user (server item ids) and when it was read -------------

PLAYED_COLUMNS = tuple(f.name for f in fields(PlayedItem))


def load_watch_sync(conn: psycopg.Connection, user_id: str) -> tuple[WatchSync | None, datetime]:
    """(the user's last writing sync or None if never synced,
    the database's time now: a read that starts after this instant is what the next sync compares with)."""
    with conn.cursor(row_factory=class_row(WatchSync)) as cur:
        sync = cur.execute(
            "SELECT exclude_root, full_read_at, catalog_removals, catalog_version, read_digest, unmatched_items "
            "FROM user_watch_sync "
            "WHERE user_id = %s",
            (user_id,),
        ).fetchone()
    return sync, conn.execute("SELECT clock_timestamp()").fetchone()[0]


def load_played_items(conn: psycopg.Connection, user_id: str) -> list[PlayedItem]:
    """The user's stored played set."""
    with conn.cursor(row_factory=class_row(PlayedItem)) as cur:
        return cur.execute(
            f"SELECT {', '.join(PLAYED_COLUMNS)} FROM user_played_items WHERE user_id = %s", (user_id,)
        ).fetchall()


def catalog_version(conn: psycopg.Connection) -> CatalogVersion:
    """Fingerprints of the catalog, compared for equality by the next sync. Counts ride along with the newest
    timestamps, so a change that commits later than its rows' timestamp (a transaction's start) still changes
    the fingerprint."""
    with conn.cursor(row_factory=class_row(CatalogVersion)) as cur:
        return cur.execute(
            """
            SELECT concat_ws('/', e.last_removed, e.removed) AS removals,
                   concat_ws('/', e.last_removed, e.removed, e.last_changed, e.active, s.last_changed, s.active)
                       AS version
            FROM (SELECT max(removed_at) AS last_removed, count(removed_at) AS removed,
                         max(updated_at) AS last_changed, count(*) FILTER (WHERE removed_at IS NULL) AS active
                  FROM episodes) e,
                 (SELECT max(greatest(updated_at, removed_at)) AS last_changed,
                         count(*) FILTER (WHERE removed_at IS NULL) AS active FROM series) s
            """
        ).fetchone()


def write_played_items(conn: psycopg.Connection, user_id: str, rows: Sequence[tuple], replace: bool) -> int:
    """Upsert played items (rows in PLAYED_COLUMNS order) touching only those that differ; with `replace`,
    items not in `rows` are deleted (a full read), else kept (an incremental read never removes any).
    Returns rows changed."""
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[]] * len(PLAYED_COLUMNS)
    names = ", ".join(PLAYED_COLUMNS)
    updates = PLAYED_COLUMNS[1:]
    changed = conn.execute(
        f"""
        INSERT INTO user_played_items AS p (user_id, {names})
        SELECT %s, * FROM unnest(%s::text[], %s::int[], %s::timestamptz[], %s::bigint[], %s::real[], %s::text[],
                                 %s::int[], %s::int[], %s::text[], %s::text[], %s::text[], %s::bool[])
        ON CONFLICT (user_id, item_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in updates)}
        WHERE ({", ".join(f"p.{c}" for c in updates)})
              IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in updates)})
        """,
        [user_id, *cols],
    ).rowcount
    if replace:
        changed += conn.execute(
            "DELETE FROM user_played_items WHERE user_id = %s AND NOT (item_id = ANY(%s))", (user_id, cols[0])
        ).rowcount
    return changed


def save_watch_sync(conn: psycopg.Connection, user_id: str, exclude_root: str, read: str,
                    read_started: datetime, catalog: CatalogVersion, digest: str | None = None,
                    unmatched: int = 0) -> None:
    """Record a sync that wrote something, read in full, saw a new catalog or a new read digest: how, with which
    picks root, when its read started, which catalog it saw, the digest of its read and its unmatched count."""
    conn.execute(
        """
        INSERT INTO user_watch_sync AS s (user_id, exclude_root, full_read_at, synced_at, last_read,
                                          catalog_removals, catalog_version, read_digest, unmatched_items)
        VALUES (%(u)s, %(root)s, %(at)s, %(at)s, %(read)s, %(removals)s, %(version)s, %(digest)s, %(unmatched)s)
        ON CONFLICT (user_id) DO UPDATE SET exclude_root = EXCLUDED.exclude_root, synced_at = EXCLUDED.synced_at,
            last_read = EXCLUDED.last_read, catalog_removals = EXCLUDED.catalog_removals,
            catalog_version = EXCLUDED.catalog_version, read_digest = EXCLUDED.read_digest,
            unmatched_items = EXCLUDED.unmatched_items,
            full_read_at = CASE WHEN EXCLUDED.last_read = 'full' THEN EXCLUDED.full_read_at ELSE s.full_read_at END
        """,
        {"u": user_id, "root": exclude_root, "read": read, "at": read_started, "removals": catalog.removals,
         "version": catalog.version, "digest": digest, "unmatched": unmatched},
    )


def stored_episode_counts(conn: psycopg.Connection, user_id: str) -> tuple[int, int]:
    """(episodes watched, episodes in progress) among the user's stored episode states."""
    return conn.execute(
        "SELECT count(*) FILTER (WHERE played), count(*) FILTER (WHERE NOT played AND position_ticks > 0) "
        "FROM episode_watch_state WHERE user_id = %s", (user_id,)).fetchone()
