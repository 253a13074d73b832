"""Catalog sync benchmark: the large synthetic library (2,000 series / 100,000 episodes) served by the
sample server with 20 ms latency per request, synced through the `series_catalog` asset into the
embedded PostgreSQL. Prints wall time, HTTP requests and rows changed for a first sync and a no-change
re-sync, with the ratio to the prior tool's measured 20 s (prior-art.md: 113 requests, 20 s both times,
and its re-sync still inserted 5 series + 298 episodes).

Run: .venv/bin/python bench/bench_catalog.py [--series 2000] [--episodes 100000] [--latency-ms 20]
"""

import argparse

from common import synthetic_bench

from aperture_assets.defs.catalog.assets import series_catalog

PRIOR_TOOL_SECONDS = 20.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=20)
    args = parser.parse_args()

    with synthetic_bench(args.series, args.episodes, users=2, latency_ms=args.latency_ms) as bench:
        for label in ("first sync", "no-change re-sync"):
            bench.server.reset_counters()
            seconds, m = bench.run([series_catalog])
            print(f"catalog {label:>18}: {seconds:6.2f} s wall ({m['read_seconds']:.2f} s reading), "
                  f"{bench.server.request_count} HTTP requests, {m['series_total']} series / {m['episodes_total']} "
                  f"episodes, {m['rows_changed']} rows changed; prior tool {PRIOR_TOOL_SECONDS:.0f} s "
                  f"-> {PRIOR_TOOL_SECONDS / seconds:.1f}x faster")


if __name__ == "__main__":
    main()
