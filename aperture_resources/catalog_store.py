"""Set-based SQL for the catalog: stage rows with COPY, upsert only what changed, mark the rest removed.

Unchanged rows are never written (the upsert's WHERE compares every column), so a no-change sync
leaves the tables byte-for-byte alone and `updated_at` means "changed on the server".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import class_row

LIBRARY_COLUMNS = ("id", "name", "collection_type", "locations", "guid")
SERIES_COLUMNS = (
    "id", "library_id", "name", "sort_name", "original_title", "year", "end_year", "overview", "genres",
    "tags", "network", "studios", "status", "official_rating", "community_rating", "poster_path", "tvdb_id",
    "tmdb_id", "imdb_id", "premiere_date", "date_created", "path",
)
SEASON_COLUMNS = ("id", "series_id", "season_number", "name")
EPISODE_COLUMNS = (
    "id", "series_id", "season_id", "season_number", "episode_number", "episode_number_end", "name",
    "premiere_date", "runtime_ticks", "path", "date_created", "tvdb_id", "tmdb_id", "imdb_id",
)
TABLE_COLUMNS = {
    "libraries": LIBRARY_COLUMNS,
    "series": SERIES_COLUMNS,
    "seasons": SEASON_COLUMNS,
    "episodes": EPISODE_COLUMNS,
}


@dataclass(frozen=True)
class SyncCounts:
    """What one table's sync did."""

    new: int = 0
    updated: int = 0
    restored: int = 0
    removed: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> int:
        return self.new + self.updated + self.restored + self.removed


@dataclass(frozen=True)
class SeriesPreview:
    """A recently added series as the UI preview shows it."""

    name: str
    year: int | None
    network: str | None
    library: str | None
    episodes: int


@dataclass(frozen=True)
class CatalogTotals:
    """Active series and episodes in the catalog."""

    series: int
    episodes: int


def active_series_by_library(conn: psycopg.Connection) -> dict[str, int]:
    """How many active series each library holds in the catalog."""
    rows = conn.execute("SELECT library_id, count(*) FROM series WHERE removed_at IS NULL GROUP BY library_id")
    return dict(rows.fetchall())


def sync_table(conn: psycopg.Connection, table: str, rows: Sequence[tuple], *, mark_removed: bool) -> SyncCounts:
    """Upsert `rows` (tuples in TABLE_COLUMNS order) into `table`; optionally mark absent ids removed."""
    columns = TABLE_COLUMNS[table]
    stage = sql.Identifier(f"stage_{table}")
    target = sql.Identifier(table)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(stage, target))
    with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, cols)) as copy:
        for row in rows:
            copy.write_row(row)

    restored = conn.execute(
        sql.SQL("SELECT count(*) FROM {t} JOIN {s} USING (id) WHERE {t}.removed_at IS NOT NULL").format(
            t=target, s=stage)
    ).fetchone()[0]
    data_cols = [c for c in columns if c != "id"]
    assignments = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in data_cols
    )
    current = sql.SQL(", ").join(sql.SQL("{t}.{c}").format(t=target, c=sql.Identifier(c)) for c in data_cols)
    incoming = sql.SQL(", ").join(sql.SQL("EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in data_cols)
    upserted = conn.execute(
        sql.SQL(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM {s} "
            "ON CONFLICT (id) DO UPDATE SET {assign}, removed_at = NULL, updated_at = now() "
            "WHERE ({current}, {t}.removed_at IS NULL) IS DISTINCT FROM ({incoming}, true) "
            "RETURNING (xmax = 0)"
        ).format(t=target, s=stage, cols=cols, assign=assignments, current=current, incoming=incoming)
    ).fetchall()
    new = sum(1 for (inserted,) in upserted if inserted)
    removed = 0
    if mark_removed:
        removed = conn.execute(
            sql.SQL(
                "UPDATE {t} SET removed_at = now() WHERE removed_at IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM {s} WHERE {s}.id = {t}.id)"
            ).format(t=target, s=stage)
        ).rowcount
    touched = len(upserted)
    return SyncCounts(
        new=new,
        updated=touched - new - restored,
        restored=restored,
        removed=removed,
        unchanged=len(rows) - touched,
    )


def active_count(conn: psycopg.Connection, table: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE removed_at IS NULL").format(sql.Identifier(table))
    return conn.execute(query).fetchone()[0]


def newest_series(conn: psycopg.Connection, limit: int = 10) -> list[SeriesPreview]:
    """Recently added active series for the UI preview."""
    with conn.cursor(row_factory=class_row(SeriesPreview)) as cur:
        return cur.execute(
            "SELECT s.name, s.year, s.network, l.name AS library, "
            "(SELECT count(*) FROM episodes e WHERE e.series_id = s.id AND e.removed_at IS NULL) AS episodes "
            "FROM series s LEFT JOIN libraries l ON l.id = s.library_id "
            "WHERE s.removed_at IS NULL ORDER BY s.first_seen_at DESC, s.sort_name LIMIT %s",
            (limit,),
        ).fetchall()


def catalog_totals(conn: psycopg.Connection) -> CatalogTotals:
    """How many series and episodes the catalog holds (removed ones left out)."""
    with conn.cursor(row_factory=class_row(CatalogTotals)) as cur:
        return cur.execute(
            "SELECT (SELECT count(*) FROM series WHERE removed_at IS NULL) AS series,"
            " (SELECT count(*) FROM episodes WHERE removed_at IS NULL) AS episodes"
        ).fetchone()
