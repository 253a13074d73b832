"""Catalog sync benchmark: the large synthetic library (2,000 series / 100,000 episodes) served by the
sample server with 20 ms latency per request, synced through the `series_catalog` asset into the
embedded PostgreSQL. Prints wall time, HTTP requests and rows changed for a first sync and a no-change
re-sync, with the ratio to the prior tool's measured 20 s (prior-art.md: 113 requests, 20 s both times,
and its re-sync still inserted 5 series + 298 episodes).

Run: .venv/bin/python bench/bench_catalog.py [--series 2000] [--episodes 100000] [--latency-ms 20]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import psycopg
from dagster import materialize

from aperture_assets.catalog import series_catalog
from aperture_resources import database as db
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerResource
from aperture_resources.sample_server import SampleServer, synthetic

PRIOR_TOOL_SECONDS = 20.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=20)
    args = parser.parse_args()

    data = synthetic.generate(n_series=args.series, n_episodes=args.episodes, n_users=2)
    server = SampleServer(data, mode="jellyfin", api_key="bench", latency_ms=args.latency_ms).start()
    root = Path(tempfile.mkdtemp(prefix="aperture-bench-", dir="/tmp"))
    try:
        url = db.start_embedded(root, stop_on_exit=True)
        app = db.with_database(url, db.APP_DATABASE)
        resources = {
            "media_server": MediaServerResource(server_type="jellyfin", url=server.url, api_key="bench"),
            "database": DatabaseResource(url=app),
        }
        with DatabaseResource(url=app).connect():
            pass  # apply migrations outside the timed section
        for label in ("first sync", "no-change re-sync"):
            server.reset_counters()
            started = time.perf_counter()
            result = materialize([series_catalog], resources=resources)
            seconds = time.perf_counter() - started
            m = {k: v.value for k, v in result.asset_materializations_for_node("series_catalog")[0].metadata.items()}
            print(f"{label:>18}: {seconds:6.2f} s wall ({m['read_seconds']:.2f} s reading), "
                  f"{server.request_count} HTTP requests, {m['series_total']} series / {m['episodes_total']} "
                  f"episodes, {m['rows_changed']} rows changed; prior tool {PRIOR_TOOL_SECONDS:.0f} s "
                  f"-> {PRIOR_TOOL_SECONDS / seconds:.1f}x faster")
        with psycopg.connect(app) as conn:
            print("rows:", conn.execute("SELECT (SELECT count(*) FROM aperture.series),"
                                        " (SELECT count(*) FROM aperture.episodes)").fetchone())
    finally:
        server.stop()
        db.stop_embedded(root)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
