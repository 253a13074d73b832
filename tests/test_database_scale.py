"""The hot queries stay indexed on a large catalog: the real store functions run against a database filled
like a big server (8,000 series, 200,000 episodes, 200 users who each watched 40 whole shows) and every
statement they send is EXPLAINed in the same session (same planner settings) as it is sent. A per-user or
per-item statement must not read a large table sequentially, and the neighbour query must use the model's
HNSW index. EXPLAIN without ANALYZE executes nothing, so the functions' own writes run as usual."""

from __future__ import annotations

import json

import psycopg
import pytest

from aperture_assets.logic.watch_rows import series_state
from aperture_resources import recommendation_store, watch_store
from aperture_resources.catalog_store import TABLE_COLUMNS, sync_table
from aperture_resources.embedding_store import ensure_model_index, index_name

SERIES, EPISODES_PER_SERIES, USERS, SHOWS_PER_USER, DIMS = 8_000, 25, 200, 40, 32
MODEL = "openai:text-embedding-3-small:32"
BIG = {"series", "episodes", "episode_watch_state", "series_progress", "user_played_items", "series_embeddings"}

FILL = f"""
INSERT INTO libraries (id, name) VALUES ('lib', 'TV');
INSERT INTO series (id, library_id, name, tvdb_id, tmdb_id, overview, path)
    SELECT 's' || i, 'lib', 'Series ' || i, (100000 + i)::text, (500000 + i)::text, repeat(md5(i::text), 15),
           '/media/tv/Series ' || i
    FROM generate_series(1, {SERIES}) i;
INSERT INTO episodes (id, series_id, season_number, episode_number, name, path)
    SELECT 'e' || s || '_' || n, 's' || s, 1, n, 'Episode ' || n,
           '/media/tv/Series ' || s || '/Season 01/Series ' || s || ' - S01E' || n || ' - Episode ' || n || '.mkv'
    FROM generate_series(1, {SERIES}) s, generate_series(1, {EPISODES_PER_SERIES}) n;
INSERT INTO media_users (id, name) SELECT 'u' || i, 'User ' || i FROM generate_series(1, {USERS}) i;
INSERT INTO episode_watch_state (user_id, episode_id, played, play_count, last_played_at)
    SELECT 'u' || u, 'e' || ((u * 97 + k) % {SERIES} + 1) || '_' || n, true, 1, now() - k * interval '1 day'
    FROM generate_series(1, {USERS}) u, generate_series(1, {SHOWS_PER_USER}) k,
         generate_series(1, {EPISODES_PER_SERIES}) n;
INSERT INTO user_played_items (user_id, item_id, play_count)
    SELECT user_id, episode_id, 1 FROM episode_watch_state;
INSERT INTO series_progress (user_id, series_id, episodes_watched, episodes_available, percent, state)
    SELECT w.user_id, e.series_id, count(*), {EPISODES_PER_SERIES}, 10.0 * count(*), 'in_progress'
    FROM episode_watch_state w JOIN episodes e ON e.id = w.episode_id GROUP BY w.user_id, e.series_id;
INSERT INTO series_embeddings (series_id, model, dims, text_hash, embedding)
    SELECT 's' || i, '{MODEL}', {DIMS}, md5(i::text),
           (SELECT array_agg(sin(i * d + d)::real) FROM generate_series(1, {DIMS}) d)::vector
    FROM generate_series(1, {SERIES}) i;
"""


class Explained(psycopg.Cursor):
    """A cursor that EXPLAINs each statement (with its parameters) just before running it."""

    plans: list[tuple[str, dict]] = []

    def execute(self, query, params=None, **kwargs):
        text = query.as_string(self.connection) if isinstance(query, psycopg.sql.Composable) else str(query)
        if text.lstrip().split(None, 1)[0].upper() in {"SELECT", "WITH", "UPDATE", "DELETE", "INSERT"}:
            with psycopg.Cursor(self.connection) as cur:
                plan = cur.execute(f"EXPLAIN (FORMAT JSON) {text}", params).fetchone()[0]
            Explained.plans.append((text, (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]))
        return super().execute(query, params, **kwargs)


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def seq_scans(plan: dict) -> set[str]:
    return {n["Relation Name"] for n in nodes(plan) if n["Node Type"] == "Seq Scan"} & BIG


@pytest.fixture(scope="module")
def big(module_database):
    with module_database.connect() as conn:
        conn.execute(FILL)
        ensure_model_index(conn, MODEL, DIMS)
        conn.execute("ANALYZE")
    return module_database


def page_of(conn, table: str) -> list[tuple]:
    """One page of the catalog read (1,000 rows, as stored: an unchanged page)."""
    cols = ", ".join(TABLE_COLUMNS[table])
    return psycopg.Cursor(conn).execute(f"SELECT {cols} FROM {table} ORDER BY id LIMIT 1000").fetchall()


def explained(database, call) -> list[tuple[str, dict]]:
    """The plans of every statement `call(conn)` sends."""
    Explained.plans = []
    with database.connect() as conn:
        conn.cursor_factory = Explained
        call(conn)
        conn.rollback()
    assert Explained.plans
    return Explained.plans


def test_nearest_neighbours_use_the_models_hnsw_index(big):
    plans = explained(big, lambda conn: recommendation_store.nearest_shows(conn, MODEL, DIMS, ["s1", "s2", "s3"], 100))
    (_, plan), = [p for p in plans if "<=>" in p[0]]
    assert index_name(MODEL) in {n.get("Index Name") for n in nodes(plan)}, plan
    assert not seq_scans(plan)


@pytest.mark.parametrize("name, call", [
    ("user_histories for some users", lambda c: recommendation_store.user_histories(c, ["u7", "u8"])),
    ("load_played_items", lambda c: watch_store.load_played_items(c, "u7")),
    ("user_summary", lambda c: watch_store.user_summary(c, "u7")),
    ("known_episode_ids", lambda c: watch_store.known_episode_ids(c, [f"e{i}_1" for i in range(1, 500)])),
    ("known_series_ids", lambda c: watch_store.known_series_ids(c, [f"s{i}" for i in range(1, 500)])),
    ("series_provider_ids", lambda c: watch_store.series_provider_ids(c, ["s1", "s2"])),
    ("match_by_provider", lambda c: watch_store.match_by_provider(
        c, [(0, "100001", None, None, 1, 1, None), (1, None, "500002", None, None, None, None)])),
    ("write_user_history", lambda c: watch_store.write_user_history(
        c, "u7", [("e1_1", True, 2, None, 0, None, False)], ["s1"], series_state, False)),
    ("catalog upsert of one page", lambda c: sync_table(c, "episodes", page_of(c, "episodes"), mark_removed=False)),
])
def test_per_user_and_per_item_statements_use_indexes(big, name, call):
    plans = explained(big, call)
    scanned = {text.split()[0] + " ... " + ", ".join(sorted(seq_scans(plan))) for text, plan in plans
               if seq_scans(plan) and "started AS" not in text}
    assert not scanned, (name, scanned)


def test_the_started_part_of_user_histories_reads_all_users(big):
    """Documented, not a regression: user_histories' `started` CTE aggregates every user's plays before it is
    joined, so even a per-user call reads episode_watch_state whole. The stage calls it once per run for all
    users (it needs everyone for the collaborative signal), where a sequential read is the right plan."""
    plans = explained(big, lambda c: recommendation_store.user_histories(c, ["u7"]))
    assert any("episode_watch_state" in seq_scans(plan) for _, plan in plans)
