"""Watch-history benchmark: 50 users on the large synthetic library (2,000 series / 100,000 episodes,
20 ms latency per request), all users in one Dagster run. Prints wall time, requests per user and rows
changed for a first sync and a no-change re-sync, with the ratio to the prior tool's 32-37 s
(prior-art.md: one user at a time, 205 requests).

Run: .venv/bin/python bench/bench_history.py [--users 50] [--latency-ms 20]
"""

import argparse

from common import synthetic_bench

from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.defs.watch_history.assets import series_watch_history

PRIOR_TOOL_SECONDS = 32.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20)
    args = parser.parse_args()

    with synthetic_bench(users=args.users, latency_ms=args.latency_ms) as bench:
        bench.run([series_catalog])
        for label in ("first sync", "no-change re-sync"):
            bench.server.reset_counters()
            seconds, m = bench.run([series_watch_history], partitioned=True)
            users = len(bench.user_ids)
            print(f"history {label:>18}: {seconds:6.2f} s wall for {users} users, {bench.server.request_count} "
                  f"HTTP requests ({bench.server.request_count / users:.1f} per user), "
                  f"{m['run_episodes_watched']} episodes watched, {m['run_rows_changed']} rows changed; prior tool "
                  f"{PRIOR_TOOL_SECONDS:.0f} s -> {PRIOR_TOOL_SECONDS / seconds:.1f}x faster")


if __name__ == "__main__":
    main()
