"""Set-based SQL for the catalog: stage rows with COPY, upsert only what changed, mark the rest removed.

Unchanged rows are never written (the upsert's WHERE compares every column), so a no-change sync
leaves the tables byte-for-byte alone and `updated_at` means "changed on the server".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

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


class CatalogStage:
    """Catalog rows staged as pages arrive (COPY into temporary tables that live until the transaction ends),
    so a full read never holds the library in Python; `sync` then upserts one table set-based. Each row carries
    the number of the read it came from: a read that repeats an id lost another item (an unstable sort order),
    and across reads the first copy wins."""

    def __init__(self, conn: psycopg.Connection, tables: Sequence[str]) -> None:
        self.conn = conn
        self.staged = dict.fromkeys(tables, 0)
        for table in tables:
            stage = sql.Identifier(f"stage_{table}")
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
            conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS, read_no int NOT NULL) "
                                 "ON COMMIT DROP").format(stage, sql.Identifier(table)))

    def write(self, table: str, read_no: int, rows: Sequence[tuple]) -> None:
        """Stage rows (tuples in TABLE_COLUMNS order) of one read."""
        if not rows:
            return
        cols = sql.SQL(", ").join(map(sql.Identifier, (*TABLE_COLUMNS[table], "read_no")))
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(f"stage_{table}"), cols)
        with self.conn.cursor().copy(copy_sql) as copy:
            for row in rows:
                copy.write_row((*row, read_no))
        self.staged[table] += len(rows)

    def repeating_reads(self, table: str) -> list[int]:
        """Reads that staged some id twice."""
        return [r for (r,) in self.conn.execute(sql.SQL(
            "SELECT read_no FROM {} GROUP BY read_no HAVING count(*) <> count(DISTINCT id) ORDER BY 1"
        ).format(sql.Identifier(f"stage_{table}")))]

    def sync(self, table: str, *, mark_removed: bool) -> SyncCounts:
        """Upsert the staged rows into `table`, writing only rows that differ; optionally mark absent ids removed."""
        columns = TABLE_COLUMNS[table]
        stage = sql.Identifier(f"stage_{table}")
        target = sql.Identifier(table)
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        first_copies = sql.SQL("SELECT DISTINCT ON (id) {cols} FROM {s} ORDER BY id, read_no").format(
            cols=cols, s=stage)
        restored = self.conn.execute(
            sql.SQL("SELECT count(DISTINCT id) FROM {t} JOIN {s} USING (id) WHERE {t}.removed_at IS NOT NULL").format(
                t=target, s=stage)
        ).fetchone()[0]
        data_cols = [c for c in columns if c != "id"]
        assignments = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in data_cols
        )
        current = sql.SQL(", ").join(sql.SQL("{t}.{c}").format(t=target, c=sql.Identifier(c)) for c in data_cols)
        incoming = sql.SQL(", ").join(sql.SQL("EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in data_cols)
        upserted = self.conn.execute(
            sql.SQL(
                "INSERT INTO {t} ({cols}) {first} "
                "ON CONFLICT (id) DO UPDATE SET {assign}, removed_at = NULL, updated_at = now() "
                "WHERE ({current}, {t}.removed_at IS NULL) IS DISTINCT FROM ({incoming}, true) "
                "RETURNING (xmax = 0)"
            ).format(t=target, cols=cols, first=first_copies, assign=assignments, current=current,
                     incoming=incoming)
        ).fetchall()
        new = sum(1 for (inserted,) in upserted if inserted)
        removed = 0
        if mark_removed:
            removed = self.conn.execute(
                sql.SQL(
                    "UPDATE {t} SET removed_at = now() WHERE removed_at IS NULL "
                    "AND NOT EXISTS (SELECT 1 FROM {s} WHERE {s}.id = {t}.id)"
                ).format(t=target, s=stage)
            ).rowcount
        distinct = self.conn.execute(sql.SQL("SELECT count(DISTINCT id) FROM {}").format(stage)).fetchone()[0]
        touched = len(upserted)
        return SyncCounts(new=new, updated=touched - new - restored, restored=restored, removed=removed,
                          unchanged=distinct - touched)


def sync_table(conn: psycopg.Connection, table: str, rows: Sequence[tuple], *, mark_removed: bool) -> SyncCounts:
    """Upsert `rows` (tuples in TABLE_COLUMNS order) into `table`; optionally mark absent ids removed."""
    stage = CatalogStage(conn, [table])
    stage.write(table, 0, rows)
    return stage.sync(table, mark_removed=mark_removed)


@dataclass(frozen=True)
class CatalogRead:
    """What the last complete read of one library saw: the server's counts by item type ("Series", "Season",
    "Episode"), when that read started and when the last full read was."""

    library_id: str
    totals: dict
    read_started_at: datetime
    full_read_at: datetime


def load_catalog_reads(conn: psycopg.Connection) -> dict[str, CatalogRead]:
    with conn.cursor(row_factory=class_row(CatalogRead)) as cur:
        rows = cur.execute("SELECT library_id, totals, read_started_at, full_read_at FROM catalog_reads").fetchall()
    return {r.library_id: r for r in rows}


def save_catalog_reads(conn: psycopg.Connection, reads: Sequence[CatalogRead]) -> None:
    """Replace the stored reads (an empty list forgets them all: the next sync reads in full)."""
    conn.execute("DELETE FROM catalog_reads")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO catalog_reads (library_id, totals, read_started_at, full_read_at) "
                        "VALUES (%s, %s, %s, %s)",
                        [(r.library_id, Jsonb(r.totals), r.read_started_at, r.full_read_at) for r in reads])


def active_ids(conn: psycopg.Connection, table: str, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are active (not removed) rows of `table`."""
    query = sql.SQL("SELECT id FROM {} WHERE id = ANY(%s) AND removed_at IS NULL").format(sql.Identifier(table))
    return {r[0] for r in conn.execute(query, (list(ids),))}


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
