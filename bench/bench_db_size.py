"""Database sizes (issue #17, "Report table and index sizes"): per table of the `aperture` schema its live rows
(the statistics collector's count: an estimate, but kept without ANALYZE), total size (table + indexes + TOAST)
and index size, and the Dagster tables that grow with runs (event_logs always, others over 1 MB). bench_run.py
prints this after each scale's runs.

Run on its own against a data dir: .venv/bin/python bench/bench_db_size.py DATA_DIR
"""

import sys
from pathlib import Path

import psycopg

from aperture_resources import database as db

SIZES = """
    SELECT c.relname, coalesce(s.n_live_tup, 0), pg_total_relation_size(c.oid), pg_indexes_size(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
    WHERE c.relkind IN ('r', 'p') AND n.nspname = %s
    ORDER BY pg_total_relation_size(c.oid) DESC
"""


def table_sizes(url: str, schema: str) -> list[tuple[str, int, int, int]]:
    """(table, estimated rows, total bytes, index bytes) per table of `schema`, largest first."""
    with psycopg.connect(url) as conn:
        return conn.execute(SIZES, (schema,)).fetchall()


def print_sizes(data_dir: Path, label: str = "") -> None:
    """Both databases' tables as a Markdown table (Dagster's: only those over 1 MB, event_logs always)."""
    url = db.start_embedded(data_dir)
    rows = [("aperture", *r) for r in table_sizes(db.with_database(url, db.APP_DATABASE), db.SCHEMA)]
    rows += [("dagster", *r) for r in table_sizes(db.with_database(url, db.DAGSTER_DATABASE), "public")
             if r[0] == "event_logs" or r[2] > 2**20]
    print(f"\n{label}database sizes (after the runs)\n| database | table | live rows (est.) | total MB | indexes MB |\n"
          "|---|---|---|---|---|")
    for database, table, tuples, total, indexes in rows:
        print(f"| {database} | {table} | {tuples:,} | {total / 2**20:.1f} | {indexes / 2**20:.1f} |")
    print(f"| | all of aperture | | {sum(r[3] for r in rows if r[0] == 'aperture') / 2**20:.1f} "
          f"| {sum(r[4] for r in rows if r[0] == 'aperture') / 2**20:.1f} |", flush=True)


if __name__ == "__main__":
    print_sizes(Path(sys.argv[1]))
