"""SQL for recommendations: user histories by show, the catalog's vectors, pgvector nearest neighbours (no
longer the candidate pool's source: an exact search in memory is faster at the scales measured), storing ranked
runs and pruning old ones.

A "show" is one title however many library copies the server holds: copies share a provider id, so
the show key is the first of tvdb / tmdb / imdb id (falling back to the item id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import class_row, scalar_row
from psycopg.types.json import Jsonb

SHOW_KEY = ("coalesce('tvdb:' || s.tvdb_id, 'tmdb:' || s.tmdb_id, 'imdb:' || s.imdb_id, 'id:' || s.id)")


@dataclass(frozen=True)
class ShowHistory:
    """One user's merged progress on one show (all its copies)."""

    user_id: str
    show: str
    state: str
    episodes_watched: int
    episodes_available: int
    max_play_count: int
    is_favorite: bool
    last_watched_at: datetime | None
    started_at: datetime | None


@dataclass(frozen=True)
class CatalogShow:
    """An active show with a vector for the model, by one representative copy (the vector is in `shows`'s
    matrix)."""

    show: str
    series_id: str
    name: str
    year: int | None
    community_rating: float | None
    genres: list[str]
    tags: list[str]


@dataclass(frozen=True)
class ShowCopy:
    """One library's copy of an active show, with what a user's access rules look at."""

    show: str
    series_id: str
    library_id: str | None
    path: str | None
    official_rating: str | None
    tags: list[str]


@dataclass(frozen=True)
class LatestPick:
    """One pick of a user's latest run."""

    rank: int
    series_id: str
    name: str
    score: float
    cold_start: bool
    created_at: datetime


def user_histories(conn: psycopg.Connection, user_ids: Sequence[str] | None = None) -> list[ShowHistory]:
    """Per (user, show): merged progress of its copies. State merge: any copy in progress wins, then
    completed, then caught up."""
    with conn.cursor(row_factory=class_row(ShowHistory)) as cur:
        return cur.execute(
            f"""
            WITH started AS (
                SELECT w.user_id, e.series_id, min(w.last_played_at) AS started_at
                FROM episode_watch_state w JOIN episodes e ON e.id = w.episode_id
                WHERE w.played OR w.position_ticks > 0
                GROUP BY w.user_id, e.series_id
            )
            SELECT p.user_id, {SHOW_KEY} AS show,
                   CASE WHEN bool_or(p.state = 'in_progress') THEN 'in_progress'
                        WHEN bool_or(p.state = 'completed') THEN 'completed'
                        WHEN bool_or(p.state = 'caught_up') THEN 'caught_up' ELSE 'not_started' END AS state,
                   max(p.episodes_watched) AS episodes_watched, max(p.episodes_available) AS episodes_available,
                   max(p.max_play_count) AS max_play_count, bool_or(p.is_favorite) AS is_favorite,
                   max(p.last_watched_at) AS last_watched_at, min(st.started_at) AS started_at
            FROM series_progress p
            JOIN series s ON s.id = p.series_id
            LEFT JOIN started st ON st.user_id = p.user_id AND st.series_id = p.series_id
            WHERE (%(all)s OR p.user_id = ANY(%(users)s))
              AND NOT EXISTS (SELECT 1 FROM media_users u WHERE u.id = p.user_id
                              AND (u.is_disabled OR u.removed_at IS NOT NULL))
            GROUP BY p.user_id, show
            ORDER BY p.user_id, show
            """,
            {"all": user_ids is None, "users": list(user_ids or [])},
        ).fetchall()


def shows(conn: psycopg.Connection, model: str) -> tuple[list[CatalogShow], np.ndarray]:
    """Every active show with a vector for `model`, one representative copy each, and their vectors as an
    L2-normalised float32 matrix (row i is show i). The vectors come in binary and in pages straight into the
    matrix: as text, 20,000 vectors of 1,536 dimensions were some 300 MB of strings and seconds of parsing."""
    rows: list[CatalogShow] = []
    matrix = np.zeros((0, 0), dtype=np.float32)
    with conn.cursor(name="catalog_vectors", binary=True) as cur:
        cur.itersize = 2000
        cur.execute(
            f"""
            SELECT count(*) OVER () AS total, show, series_id, name, year, community_rating, genres, tags, embedding
            FROM (SELECT DISTINCT ON (show) show, id AS series_id, name, year, community_rating, genres, tags,
                         embedding
                  FROM (SELECT {SHOW_KEY} AS show, s.*, v.embedding FROM series s
                        JOIN series_embeddings v ON v.series_id = s.id AND v.model = %s
                        WHERE s.removed_at IS NULL) s
                  ORDER BY show, id) d
            ORDER BY show
            """,
            (model,),
        )
        for total, *fields, value in cur:
            embedding = value.to_numpy() if hasattr(value, "to_numpy") else value  # pgvector's Vector
            if not rows:
                matrix = np.empty((total, len(embedding)), dtype=np.float32)
            matrix[len(rows)] = embedding
            rows.append(CatalogShow(*fields))
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return rows, matrix


def show_copies(conn: psycopg.Connection) -> list[ShowCopy]:
    """Every active copy of every show, copies of one show in id order (the order they are offered in)."""
    with conn.cursor(row_factory=class_row(ShowCopy)) as cur:
        return cur.execute(
            f"SELECT {SHOW_KEY} AS show, s.id AS series_id, s.library_id, s.path, s.official_rating, s.tags "
            "FROM series s WHERE s.removed_at IS NULL ORDER BY show, s.id").fetchall()


def catalog_libraries(conn: psycopg.Connection) -> list[str]:
    """The ids of the libraries holding an active catalog series."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute("SELECT DISTINCT library_id FROM series WHERE removed_at IS NULL AND library_id IS NOT NULL"
                           " ORDER BY 1").fetchall()


def disliked_shows(conn: psycopg.Connection) -> dict[str, frozenset[str]]:
    """Per user, the shows they marked "dislike" (any copy)."""
    out: dict[str, set[str]] = {}
    for user_id, show in conn.execute(
            f"SELECT d.user_id, {SHOW_KEY} FROM series_dislikes d JOIN series s ON s.id = d.series_id"):
        out.setdefault(user_id, set()).add(show)
    return {user_id: frozenset(shows) for user_id, shows in out.items()}


def nearest_shows(conn: psycopg.Connection, model: str, dims: int, anchors: Sequence[str],
                  per_anchor: int) -> dict[str, list[str]]:
    """Per anchor series, the show keys of the `per_anchor` nearest series (HNSW cosine, this model's partial
    index), in one statement."""
    if not anchors:
        return {}
    expr = sql.SQL("embedding::vector({})").format(sql.Literal(dims))
    query = sql.SQL(
        """
        SELECT a.series_id, {show}
        FROM series_embeddings a
        CROSS JOIN LATERAL (
            SELECT series_id FROM series_embeddings
            WHERE model = {model}
            ORDER BY {expr} <=> a.{expr} LIMIT {limit}
        ) n
        JOIN series s ON s.id = n.series_id AND s.removed_at IS NULL
        WHERE a.model = {model} AND a.series_id = ANY(%s)
        """
    ).format(show=sql.SQL(SHOW_KEY), model=sql.Literal(model), expr=expr, limit=sql.Literal(per_anchor))
    # On small catalogs the planner prefers an exact sort of every vector (~10x slower per anchor); use the
    # model's HNSW index, searching wide enough to return `per_anchor` rows, for this statement only.
    planner = ("enable_seqscan", "enable_bitmapscan", "enable_sort")
    for name in planner:
        conn.execute(sql.SQL("SET {} = off").format(sql.Identifier(name)))
    conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(max(40, per_anchor))))
    try:
        found: dict[str, list[str]] = {}
        for anchor, show in conn.execute(query, (list(anchors),)):
            found.setdefault(anchor, []).append(show)
        return found
    finally:
        for name in (*planner, "hnsw.ef_search"):
            conn.execute(sql.SQL("RESET {}").format(sql.SQL(name)))


def count_without_vector(conn: psycopg.Connection, model: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM series s WHERE s.removed_at IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM series_embeddings v WHERE v.series_id = s.id AND v.model = %s)",
        (model,),
    ).fetchone()[0]


def save_run(conn: psycopg.Connection, user_id: str, model: str, parameters: dict, cold_start: bool,
             dagster_run_id: str | None, picks: Sequence[tuple]) -> int:
    """Store one run. Picks: (rank, series_id, score, components, evidence, explanation)."""
    run_id = conn.execute(
        "INSERT INTO recommendation_runs (user_id, model, parameters, cold_start, dagster_run_id) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (user_id, model, Jsonb(parameters), cold_start, dagster_run_id),
    ).fetchone()[0]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO recommendations (run_id, rank, series_id, score, components, evidence, explanation) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(run_id, rank, sid, float(score), Jsonb(comp), Jsonb(ev), expl)
             for rank, sid, score, comp, ev, expl in picks],
        )
    return run_id


def prune_runs(conn: psycopg.Connection, user_id: str, keep: int) -> int:
    """Delete all but the newest `keep` runs of the user."""
    return conn.execute(
        "DELETE FROM recommendation_runs WHERE user_id = %s AND id NOT IN "
        "(SELECT id FROM recommendation_runs WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s)",
        (user_id, user_id, keep),
    ).rowcount


def latest_picks(conn: psycopg.Connection, user_id: str) -> list[LatestPick]:
    """The picks of the user's latest run, in rank order."""
    with conn.cursor(row_factory=class_row(LatestPick)) as cur:
        return cur.execute(
            "SELECT r.rank, r.series_id, s.name, r.score, r.cold_start, r.created_at FROM latest_recommendations r "
            "JOIN series s ON s.id = r.series_id WHERE r.user_id = %s ORDER BY r.rank",
            (user_id,),
        ).fetchall()


def users_with_runs(conn: psycopg.Connection) -> list[str]:
    """Ids of the users with at least one stored run."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute("SELECT DISTINCT user_id FROM recommendation_runs").fetchall()


def started_among(conn: psycopg.Connection, user_id: str, series_ids: Sequence[str]) -> list[str]:
    """Names of the given series (or any copy of the same show) the user has started, caught up on or
    completed: the exclusion check."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(
            f"""
            SELECT DISTINCT s.name FROM series s
            JOIN series c ON {SHOW_KEY} = {SHOW_KEY.replace('s.', 'c.')}
            JOIN series_progress p ON p.series_id = c.id AND p.user_id = %s
            WHERE s.id = ANY(%s) AND p.state IN ('in_progress', 'caught_up', 'completed')
            """,
            (user_id, list(series_ids)),
        ).fetchall()


def inputs_version(conn: psycopg.Connection, model: str) -> str:
    """Fingerprints of what picks depend on in the database besides the catalog (watch_store.catalog_version):
    the embeddings of `model`, the users, their histories and their own rules. A history is its last read's
    digest (equal reads write equal rows under one catalog), or the time of its last write where the sync kept no
    digest. Counts ride along with the newest timestamps, so a removal changes them too."""
    return conn.execute(
        """
        SELECT concat_ws('/',
            (SELECT concat_ws(',', count(*), max(updated_at)) FROM series_embeddings WHERE model = %s),
            (SELECT concat_ws(',', count(*), max(updated_at), count(removed_at)) FROM media_users),
            (SELECT md5(coalesce(string_agg(concat_ws(';', user_id, coalesce(read_digest, synced_at::text)),
                                            '|' ORDER BY user_id), '')) FROM user_watch_sync),
            (SELECT md5(coalesce(string_agg(concat_ws(';', user_id, exclude_genres, include_genres, exclude_tags),
                                            '|' ORDER BY user_id), '')) FROM user_preferences))
        """, (model,)).fetchone()[0]


def standing_users(conn: psycopg.Connection, user_ids: Sequence[str], inputs: str,
                   since: datetime) -> dict[str, tuple[datetime, bool]]:
    """Those of `user_ids` whose latest run was made from `inputs` (its parameters' "inputs") at or after `since`,
    with that run's time and whether it was a cold start."""
    rows = conn.execute(
        """
        SELECT user_id, created_at, cold_start FROM (
            SELECT DISTINCT ON (user_id) user_id, parameters->>'inputs' AS inputs, created_at, cold_start
            FROM recommendation_runs WHERE user_id = ANY(%s) ORDER BY user_id, created_at DESC, id DESC) latest
        WHERE inputs = %s AND created_at >= %s
        """, (list(user_ids), inputs, since)).fetchall()
    return {user_id: (created_at, cold_start) for user_id, created_at, cold_start in rows}
