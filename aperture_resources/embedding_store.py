"""SQL for series embeddings: what is stored per model, writing vectors, and the per-model HNSW index."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import class_row, scalar_row


@dataclass(frozen=True)
class SeriesDescription:
    """The fields of an active series its embedding text is built from."""

    id: str
    name: str
    year: int | None
    end_year: int | None
    status: str | None
    overview: str | None
    genres: list[str]
    tags: list[str]
    network: str | None


def active_series_texts(conn: psycopg.Connection) -> list[SeriesDescription]:
    """Every active series' description, by id."""
    with conn.cursor(row_factory=class_row(SeriesDescription)) as cur:
        return cur.execute(
            "SELECT id, name, year, end_year, status, overview, genres, tags, network FROM series "
            "WHERE removed_at IS NULL ORDER BY id"
        ).fetchall()


def stored_hashes(conn: psycopg.Connection, model: str) -> dict[str, str]:
    rows = conn.execute("SELECT series_id, text_hash FROM series_embeddings WHERE model = %s", (model,))
    return dict(rows.fetchall())


def stored_dimensions(conn: psycopg.Connection, model: str) -> int | None:
    row = conn.execute("SELECT dims FROM series_embeddings WHERE model = %s LIMIT 1", (model,)).fetchone()
    return row[0] if row else None


def write_embeddings(conn: psycopg.Connection, model: str, rows: Sequence[tuple[str, str, np.ndarray]]) -> int:
    """Upsert (series_id, text_hash, vector) rows for `model`."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO series_embeddings (series_id, model, dims, text_hash, embedding) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (series_id, model) DO UPDATE SET dims = EXCLUDED.dims, "
            "text_hash = EXCLUDED.text_hash, embedding = EXCLUDED.embedding, updated_at = now()",
            [(sid, model, int(vec.shape[0]), digest, vec) for sid, digest, vec in rows],
        )
    conn.execute("ANALYZE series_embeddings")  # fresh statistics, so neighbour queries plan on the HNSW index
    return len(rows)


def index_name(model: str) -> str:
    return "series_embeddings_hnsw_" + hashlib.sha1(model.encode()).hexdigest()[:12]


def ensure_model_index(conn: psycopg.Connection, model: str, dims: int) -> str:
    """A partial HNSW cosine index for this model's vectors (each model has its own dimension).

    The build gets 512 MB of maintenance memory for its transaction: with PostgreSQL's default 64 MB the graph
    of 20,000 1536-dimension vectors stops fitting and the build crawls (measured 178 s against 42-50 s)."""
    name = index_name(model)
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]
    if exists:
        return name
    conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
    conn.execute(
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {name} ON series_embeddings USING hnsw "
            "((embedding::vector({dims})) vector_cosine_ops) WHERE model = {model}"
        ).format(name=sql.Identifier(name), dims=sql.Literal(dims), model=sql.Literal(model))
    )
    return name


def series_missing_vectors(conn: psycopg.Connection, model: str) -> list[str]:
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(
            "SELECT s.name FROM series s LEFT JOIN series_embeddings e ON e.series_id = s.id AND e.model = %s "
            "WHERE s.removed_at IS NULL AND e.series_id IS NULL ORDER BY s.name",
            (model,),
        ).fetchall()
