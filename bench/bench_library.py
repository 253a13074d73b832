"""Library benchmark: 50 users x 12 picks on the large synthetic library (2,000 series / 100,000 episodes)
served by the sample server (own process, 20 ms latency per request), written through the `series_library`
asset in symlink mode. The catalog is synced first (untimed) and the picks are inserted as one
recommendation run per user. Prints wall time, HTTP requests and files written for the first write (target
< 10 s) and a no-change re-run (target < 2 s, zero files written, no HTTP writes), and on a line of its own the
time the run spent waiting for the server's scans before the placeholders were listed (summed over users, who
wait side by side; the sample server scans at once, so it is 0 here unless a scan lags) with the placeholders
marked and still pending.

Run: .venv/bin/python bench/bench_library.py [--series 2000] [--episodes 100000] [--users 50] [--latency-ms 20]
     [--mode jellyfin|emby]
     [--dir /tmp]   (where the libraries are written: creating ~57,000 files is bound by that disk's latency)
"""

import argparse
import random
import shutil
import tempfile
from pathlib import Path

from common import synthetic_bench

from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.defs.library.assets import series_library
from aperture_resources.library.resource import LibraryResource

PICKS = 12


def insert_picks(database, user_ids: list[str]) -> None:
    """12 random active series per user, as one recommendation run each, in two statements."""
    with database.connect() as conn:
        series = [r[0] for r in conn.execute("SELECT id FROM series WHERE removed_at IS NULL ORDER BY id")]
        rng = random.Random(0)
        runs = conn.execute(
            "INSERT INTO recommendation_runs (user_id, model, parameters) "
            "SELECT u, 'bench', '{}' FROM unnest(%s::text[]) u RETURNING id", (user_ids,)).fetchall()
        rows = [(run_id, rank, sid) for (run_id,) in runs
                for rank, sid in enumerate(rng.sample(series, PICKS), start=1)]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO recommendations (run_id, rank, series_id, score, components, evidence) "
                            "VALUES (%s, %s, %s, 1, '{}', '[]')", rows)
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--mode", choices=["jellyfin", "emby"], default="jellyfin")
    parser.add_argument("--dir", default="/tmp", help="filesystem to write the libraries on (e.g. /dev/shm)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="aperture-bench-libraries-", dir=args.dir))
    try:
        with synthetic_bench(args.series, args.episodes, users=args.users, latency_ms=args.latency_ms,
                             mode=args.mode) as bench:
            bench.run([series_catalog])
            insert_picks(bench.database, bench.user_ids)
            library = LibraryResource(media_server=bench.resources["media_server"], root=str(root))
            for label in ("first write", "no-change re-run"):
                bench.server.reset_counters()
                seconds, m = bench.run([series_library], partitioned=True, library=library)
                files = sum(1 for _ in root.rglob("*"))
                print(f"library {label:>16}: {seconds:6.2f} s wall, {bench.server.request_count} HTTP requests, "
                      f"{m['run_users']} users, {m['run_files_written']} files written, "
                      f"{m['run_libraries_created']} libraries created, {m['run_policies_updated']} policies updated; "
                      f"{files} entries on disk")
                print(f"library {label:>16}: {m['run_scan_wait_seconds']:6.2f} s waiting for scans (summed over "
                      f"users), {m['run_placeholders_marked']} placeholders marked played, "
                      f"{m['run_placeholders_pending']} still pending")
            print("targets: first write < 10 s; no-change re-run < 2 s with 0 files written")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
