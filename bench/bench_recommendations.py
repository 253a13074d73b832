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
4. --seeds N (default 1: the library of generator seed 0 alone): one library holds ~46 hidden shows and 7-17
   hits per method, so one seed's ratios are noisy. With N > 1, parts 1 and 2's quality figures are repeated
   on the libraries of seeds 1..N-1 (the timings stay on seed 0), then printed pooled: per method the nDCG@12
   over every seed's evaluated users together and each seed's own, and each target ratio pooled with a 90%
   percentile bootstrap interval over the evaluated users (1,000 resamples of the pooled users with
   replacement, a fixed RNG seed; for the best baseline, the best is picked again in each resample).

Run: .venv/bin/python bench/bench_recommendations.py [--users 50] [--seeds 1] [--scale] [--scale-only]
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
from aperture_assets.logic.evaluation import LABELS, METHODS, METRICS, bootstrap_ratio, evaluate_users
from aperture_assets.logic.recommend import REMOVAL_RULES
from aperture_resources.ai import AIProviderResource
from aperture_resources.media_server import SERVERS
from aperture_resources.recommendation_store import disliked_shows

K = 12
BASELINES = ("ease", "item_knn", "popular", "content_only")
RESAMPLES, BOOTSTRAP_SEED = 1000, 16
PARTS = {"large": "large library", "random": "random 3-user servers", "households": "3-user households"}

UserScores = dict[str, dict[str, float]]  # one evaluated user: method -> metric -> value


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


def large_library(users: int, seed: int = 0, timed: bool = True) -> tuple[dict[str, list[UserScores]], frozenset]:
    """Parts 1 and 2 on the library of generator `seed` (the timing only if `timed`); every evaluated user's
    scores per part, and the library's shows."""
    with synthetic_bench(users=users, latency_ms=0, seed=seed) as bench:
        ai = AIProviderResource()
        set_up(bench, ai)
        if timed:
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
        with bench.database.connect() as conn:
            catalog, histories = load_world(conn, ai.model_key())
            disliked = disliked_shows(conn)
        # the asset's evaluation again, per user (for pooling across seeds); it must agree with the asset's means
        large, _ = evaluate_users(catalog, histories, datetime.now(UTC), K, disliked)
        scores = list(large.values())
        for method in METHODS:
            if abs(mean(scores, method) - q[f"{method}_ndcg"]) > 6e-5:
                print(f"  note: per-user {method} nDCG {mean(scores, method):.4f} differs from the asset's "
                      f"{q[f'{method}_ndcg']}")
        return {"large": scores, **small_servers(bench, catalog, histories, users)}, frozenset(catalog.shows)


def small_servers(bench, catalog, histories: dict, synthetic_users: int) -> dict[str, list[UserScores]]:
    """Evaluate 3-user servers cut from the library two ways: random triples (users sorted by their hashed
    ids) and households (three users of one of the generator's taste groups, which it assigns by user number
    modulo its group count), each server evaluated on its own. Every evaluated user's scores per way."""
    with SERVERS[bench.server.mode](url=bench.server.url, api_key=API_KEY).client() as client:
        names = {str(u["Id"]): u["Name"] for u in client.users()}
    users = sorted(u for u, h in histories.items() if any(x.watched.episodes_watched for x in h))
    groups = max(1, min(5, synthetic_users // 2))  # as the generator forms them
    by_group: dict[int, list[str]] = {}
    for u in sorted(users, key=lambda u: names[u]):
        by_group.setdefault((int(names[u].removeprefix("user")) - 1) % groups, []).append(u)
    households = [g[i:i + 3] for g in by_group.values() for i in range(0, len(g) - 2, 3)]
    randoms = [users[i:i + 3] for i in range(0, len(users) - 2, 3)]
    scores = {}
    for part, servers in (("random", randoms), ("households", households)):
        pooled, users_scores, reasons = pooled_report(catalog, histories, servers)
        print(f"{PARTS[part]}: {len(servers)} servers, {len(users_scores)} users evaluated "
              f"(settings: {', '.join(reasons)}):")
        print_report(pooled)
        popular, content = pooled["popular"]["ndcg"], pooled["content_only"]["ndcg"]
        print(f"  aperture nDCG@{K} / most popular: {times(pooled['aperture']['ndcg'], popular)} (target x1.5); "
              f"/ content-only {times(pooled['aperture']['ndcg'], content)}")
        scores[part] = users_scores
    return scores


def pooled_report(catalog, histories: dict, servers: list[list[str]]) -> tuple[dict, list[UserScores], set[str]]:
    """Every server evaluated on its own (its popularity, collaborative model and tuning), users pooled: the
    mean of each metric over every server's evaluated users, their scores, and the settings' reasons."""
    now = datetime.now(UTC)
    scores: list[UserScores] = []
    reasons = set()
    for server_users in servers:
        server = {u: histories[u] for u in server_users}
        view = replace(catalog)
        view.count_watchers(server)
        per_user, tuning = evaluate_users(view, server, now, K)
        reasons.add(tuning.reason.split(":")[0])
        scores.extend(per_user.values())
    return {m: {name: mean(scores, m, name) for name in METRICS} for m in METHODS}, scores, reasons


def mean(scores: list[UserScores], method: str, metric: str = "ndcg") -> float:
    return sum(s[method][metric] for s in scores) / max(len(scores), 1)


def column(scores: list[UserScores], method: str) -> list[float]:
    return [s[method]["ndcg"] for s in scores]


def noise_report(by_seed: list[dict[str, list[UserScores]]]) -> None:
    """Each part's nDCG@K pooled over the seeds' users and per seed, and its target ratio with a bootstrap
    interval over the pooled users."""
    seeds = len(by_seed)
    print(f"\npooled over generator seeds 0-{seeds - 1} (nDCG@{K}; users of every seed together; 90% intervals: "
          f"percentile bootstrap over the evaluated users, {RESAMPLES} resamples, RNG seed {BOOTSTRAP_SEED}):")
    for part, label in PARTS.items():
        per_seed = [scores[part] for scores in by_seed]
        pooled = [s for scores in per_seed for s in scores]
        print(f"{label}: {len(pooled)} users evaluated ({' + '.join(str(len(s)) for s in per_seed)}); "
              f"nDCG pooled | per seed 0..{seeds - 1}:")
        for method in METHODS:
            print(f"  {LABELS[method]:>28}: {mean(pooled, method):.3f} | "
                  + " ".join(f"{mean(scores, method):.3f}" for scores in per_seed))
        if part == "large":
            ratio = bootstrap_ratio(column(pooled, "aperture"), [column(pooled, b) for b in BASELINES],
                                    RESAMPLES, BOOTSTRAP_SEED)
            best = max(BASELINES, key=lambda b: mean(pooled, b))
            per = [times(mean(s, "aperture"), max(mean(s, b) for b in BASELINES)) for s in per_seed]
            what, target = f"tuned aperture / best baseline (pooled: {LABELS[best]})", 1.3
        else:
            ratio = bootstrap_ratio(column(pooled, "aperture"), column(pooled, "popular"), RESAMPLES,
                                    BOOTSTRAP_SEED)
            per = [times(mean(s, "aperture"), mean(s, "popular")) for s in per_seed]
            what, target = "aperture / most popular", 1.5
        print(f"  {what}: x{ratio[0]:.2f}, 90% interval x{ratio[1]:.2f}-x{ratio[2]:.2f} (target x{target:g}); "
              f"per seed " + " ".join(per))


def times(value: float, baseline: float) -> str:
    """"x1.23", or "n/a" against a baseline that scored nothing (no ratio says anything then)."""
    return f"x{value / baseline:.2f}" if baseline > 0 else "n/a (baseline 0)"


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
    parser.add_argument("--seeds", type=int, default=1,
                        help="quality on the libraries of generator seeds 0..N-1, pooled with intervals")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if not args.scale_only:
        by_seed, libraries = [], []
        for seed in range(args.seeds):
            if args.seeds > 1:
                print(f"\n== generator seed {seed}{'' if seed else ' (timings too)'} ==")
            scores, shows = large_library(args.users, seed, timed=seed == 0)
            if shows in libraries:
                raise RuntimeError(f"seed {seed} served the same library as an earlier seed: the seed did not reach "
                                   "the sample server")
            by_seed.append(scores)
            libraries.append(shows)
        if args.seeds > 1:
            noise_report(by_seed)
    if args.scale or args.scale_only:
        scale()


if __name__ == "__main__":
    main()
