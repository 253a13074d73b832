"""Recommendation benchmark, printed as ratios against the targets of issue #16.

1. The large synthetic library (2,000 series / 100,000 episodes / 50 users, 48 with history), embedded with the
   default local model (untimed): the time to compute and store every user's picks in one run, tuning
   included (target < 5 s), the candidates each rule removed, and the offline quality report (hide each user's
   most recently started show; hit-rate / recall / nDCG at 12) for aperture tuned and with default settings,
   most-popular, content-only (the prior tool), EASE and item-kNN. Target: tuned aperture nDCG@12 at least
   1.3x the best of EASE, item-kNN, most-popular and content-only.
2. Small servers: the same library cut into disjoint 3-user servers, each evaluated on its own (popularity, the
   collaborative model and the tuning see only its 3 users), the hidden shows pooled: random triples, and
   households (three users of one of the generator's taste groups). Target: aperture at least 1.5x
   most-popular.
3. --scale: 500 users over 20,000 series from the same generator, embedded by the fake OpenAI server
   (hashed words, 384 dimensions; untimed): the time for every user's picks in one run, tuning included
   (target < 60 s).

Run: .venv/bin/python bench/bench_recommendations.py [--users 50] [--scale] [--scale-only]
"""

import argparse
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import psutil
from aperture_dev.fake_ai_server import FakeAIServer
from common import API_KEY, synthetic_bench

from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.defs.embeddings.assets import series_embeddings
from aperture_assets.defs.recommendations.assets import load_world, series_recommendations
from aperture_assets.defs.recommendations.quality import recommendation_quality
from aperture_assets.defs.watch_history.assets import series_watch_history
from aperture_assets.logic.evaluation import LABELS, METHODS, METRICS, evaluate
from aperture_assets.logic.recommend import REMOVAL_RULES
from aperture_resources.ai import AIProviderResource
from aperture_resources.media_server import SERVERS

K = 12
BASELINES = ("ease", "item_knn", "popular", "content_only")


@contextmanager
def peak_memory(label: str):
    """Print this process's peak RSS while the block runs (sampled every 50 ms), and how far above its RSS before
    the block: the stage's own memory, apart from the set-up's."""
    process, stop, peak = psutil.Process(), threading.Event(), [0]

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            stop.wait(0.05)

    before = process.memory_info().rss
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        print(f"  {label}: peak RSS {peak[0] / 2**20:.0f} MB, {(peak[0] - before) / 2**20:+.0f} MB over before it")


def set_up(bench, ai: AIProviderResource) -> None:
    started = time.perf_counter()
    bench.run([series_catalog, series_embeddings], ai=ai)
    bench.run([series_watch_history], partitioned=True)
    print(f"set-up (catalog, embeddings, history): {time.perf_counter() - started:.1f} s")


def time_recommendations(bench, ai: AIProviderResource, target: float) -> None:
    with peak_memory("recommendations"):
        seconds, m = bench.run([series_recommendations], partitioned=True, ai=ai)
    print(f"recommendations: {seconds:.2f} s wall for {m['run_users']} users ({m['run_picks']} picks, "
          f"{m['run_cold_start_users']} cold start, {m['catalog_shows']} shows, {m['run_duration_seconds']:.2f} s "
          f"in the asset, of which tuning {m['tuning_seconds']:.2f} s and EASE over {m['collaborative_matrix']} "
          f"{m['collaborative_seconds']:.2f} s); target < {target:g} s: x{seconds / target:.2f} of the budget")
    print(f"  tuning: {m['tuning']} (validation nDCG {m['tuning_validation_ndcg']} vs defaults "
          f"{m['tuning_default_ndcg']} on {m['tuning_validation_users']} users)")
    removed = ", ".join(f"{rule} {m[f'run_removed_{rule}']}" for rule in REMOVAL_RULES)
    print(f"  candidates removed by each rule, all users: {removed}")


def print_report(report: dict) -> None:
    for method in METHODS:
        m = report[method]
        print(f"  {LABELS[method]:>28}: hit-rate {m['hit_rate']:.3f}  recall {m['recall']:.3f}  nDCG {m['ndcg']:.3f}")


def large_library(users: int) -> None:
    with synthetic_bench(users=users, latency_ms=0) as bench:
        ai = AIProviderResource()
        set_up(bench, ai)
        time_recommendations(bench, ai, 5.0)
        with peak_memory("quality"):
            seconds, q = bench.run([recommendation_quality], ai=ai)
        report = {m: {name: q[f"{m}_{name}"] for name in METRICS} for m in METHODS}
        print(f"quality ({q['users_evaluated']} users, hide the most recently started show, k={q['k']}, "
              f"{seconds:.1f} s; {q['tuning']}):")
        print_report(report)
        best = max(BASELINES, key=lambda b: report[b]["ndcg"])
        print(f"  tuned aperture nDCG@{K} / best baseline ({LABELS[best]}): "
              f"x{report['aperture']['ndcg'] / report[best]['ndcg']:.2f} (target x1.3)")
        for baseline in ("aperture_default", *BASELINES):
            print(f"    vs {LABELS[baseline]}: nDCG x{q[f'ndcg_ratio_vs_{baseline}']}")
        small_servers(bench, ai.model_key(), users)


def small_servers(bench, model: str, synthetic_users: int) -> None:
    """Evaluate 3-user servers cut from the library two ways: random triples (users sorted by their hashed
    ids) and households (three users of one of the generator's taste groups, which it assigns by user number
    modulo its group count), each server evaluated on its own."""
    with bench.database.connect() as conn:
        catalog, histories = load_world(conn, model)
    with SERVERS[bench.server.mode](url=bench.server.url, api_key=API_KEY).client() as client:
        names = {str(u["Id"]): u["Name"] for u in client.users()}
    users = sorted(u for u, h in histories.items() if any(x.watched.episodes_watched for x in h))
    groups = max(1, min(5, synthetic_users // 2))  # as the generator forms them
    by_group: dict[int, list[str]] = {}
    for u in sorted(users, key=lambda u: names[u]):
        by_group.setdefault((int(names[u].removeprefix("user")) - 1) % groups, []).append(u)
    households = [g[i:i + 3] for g in by_group.values() for i in range(0, len(g) - 2, 3)]
    randoms = [users[i:i + 3] for i in range(0, len(users) - 2, 3)]
    for label, servers in (("random 3-user servers", randoms), ("3-user households", households)):
        pooled, evaluated, reasons = pooled_report(catalog, histories, servers)
        print(f"{label}: {len(servers)} servers, {evaluated} users evaluated (settings: {', '.join(reasons)}):")
        print_report(pooled)
        popular, content = pooled["popular"]["ndcg"], pooled["content_only"]["ndcg"]
        print(f"  aperture nDCG@{K} / most popular: x{pooled['aperture']['ndcg'] / max(popular, 1e-9):.2f} "
              f"(target x1.5); / content-only x{pooled['aperture']['ndcg'] / max(content, 1e-9):.2f}")


def pooled_report(catalog, histories: dict, servers: list[list[str]]) -> tuple[dict, int, set[str]]:
    """Every server evaluated on its own (its popularity, collaborative model and tuning), users pooled."""
    now = datetime.now(UTC)
    totals = {m: dict.fromkeys(METRICS, 0.0) for m in METHODS}
    evaluated, reasons = 0, set()
    for server_users in servers:
        server = {u: histories[u] for u in server_users}
        view = replace(catalog)
        view.count_watchers(server)
        report, n, tuning = evaluate(view, server, now, K)
        reasons.add(tuning.reason.split(":")[0])
        for m in METHODS:
            for name in METRICS:
                totals[m][name] += report[m][name] * n
        evaluated += n
    return {m: {name: v / max(evaluated, 1) for name, v in t.items()} for m, t in totals.items()}, evaluated, reasons


def scale() -> None:
    with FakeAIServer(api_key="bench-ai") as fake, \
            synthetic_bench(series=20_000, episodes=200_000, users=500, latency_ms=0) as bench:
        ai = AIProviderResource(provider="openai", openai_base_url=fake.openai_base_url, openai_api_key="bench-ai",
                                dimensions=384)
        set_up(bench, ai)
        time_recommendations(bench, ai, 60.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--scale", action="store_true", help="also 500 users over 20,000 series")
    parser.add_argument("--scale-only", action="store_true")
    args = parser.parse_args()
    if not args.scale_only:
        large_library(args.users)
    if args.scale or args.scale_only:
        scale()


if __name__ == "__main__":
    main()
