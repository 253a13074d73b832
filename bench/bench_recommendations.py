"""Recommendation benchmark: 50 users on the large synthetic library (2,000 series / 100,000 episodes),
after history and vectors exist (embedded with the default local model, untimed). Prints the time to
compute and store every user's picks in one run (target < 5 s), the candidates each access and preference
rule removed (the synthetic users may open every library; their dislikes are the generator's), and the
offline quality report
(hit-rate / recall / nDCG at 12) against the most-popular and prior-tool baselines on that library.

Run: .venv/bin/python bench/bench_recommendations.py [--users 50]
"""

import argparse
import time

from common import synthetic_bench

from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.defs.embeddings.assets import series_embeddings
from aperture_assets.defs.recommendations.assets import series_recommendations
from aperture_assets.defs.recommendations.quality import METHODS, recommendation_quality
from aperture_assets.defs.watch_history.assets import series_watch_history
from aperture_assets.logic.recommend import REMOVAL_RULES
from aperture_resources.ai import AIProviderResource


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args()

    with synthetic_bench(users=args.users, latency_ms=0) as bench:
        ai = AIProviderResource()
        started = time.perf_counter()
        bench.run([series_catalog, series_embeddings], ai=ai)
        bench.run([series_watch_history], partitioned=True)
        print(f"set-up (catalog, local embeddings, history): {time.perf_counter() - started:.1f} s")
        seconds, m = bench.run([series_recommendations], partitioned=True, ai=ai)
        print(f"recommendations: {seconds:.2f} s wall for {m['run_users']} users ({m['run_picks']} picks, "
              f"{m['run_cold_start_users']} cold start, {m['catalog_shows']} shows, "
              f"{m['run_duration_seconds']:.2f} s in the asset); target < 5 s")
        removed = ", ".join(f"{rule} {m[f'run_removed_{rule}']}" for rule in REMOVAL_RULES)
        print(f"candidates removed by each rule, all users: {removed}")
        seconds, q = bench.run([recommendation_quality], ai=ai)
        print(f"quality ({q['users_evaluated']} users, hide the most recently started show, k={q['k']}, "
              f"{seconds:.1f} s):")
        for method in METHODS:
            print(f"  {method:>10}: hit-rate {q[f'{method}_hit_rate']:.3f}  recall {q[f'{method}_recall']:.3f}  "
                  f"nDCG {q[f'{method}_ndcg']:.3f}")
        for baseline in ("popular", "prior_tool"):
            print(f"  aperture vs {baseline}: nDCG x{q[f'ndcg_ratio_vs_{baseline}']}, "
                  f"hit-rate x{q[f'hit_rate_ratio_vs_{baseline}']}")


if __name__ == "__main__":
    main()
