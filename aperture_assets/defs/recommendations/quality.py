"""`recommendation_quality`: offline evaluation of the recommender on the server's own history.

For every user with at least `MIN_SHOWS` watched shows besides it, hide their most recently started show,
recommend from the rest, and score hit-rate@K, recall@K and nDCG@K in one run for: aperture as tuned (on the
rest only), aperture with its default settings, most-popular-unwatched, a content-only score (one averaged
taste vector), EASE alone and item-kNN alone. With one hidden show per user, recall@K equals hit-rate@K; both
are reported.
"""


import time
from datetime import UTC, datetime

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from aperture_assets.defs.recommendations.assets import load_world
from aperture_assets.logic.evaluation import LABELS, METHODS, evaluate
from aperture_assets.wiring.stage import stage_body
from aperture_resources.ai import AIProviderResource
from aperture_resources.database import DatabaseResource
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.recommendation_store import disliked_shows

BASELINES = ("aperture_default", "popular", "content_only", "ease", "item_knn")
BAR = 40  # characters of the longest bar


def quality_table(report: dict[str, dict[str, float]], k: int) -> str:
    lines = [f"| Method | hit-rate@{k} | recall@{k} | nDCG@{k} |", "|---|---|---|---|"]
    for method in METHODS:
        m = report[method]
        lines.append(f"| {LABELS[method]} | {m['hit_rate']:.3f} | {m['recall']:.3f} | {m['ndcg']:.3f} |")
    return "\n".join(lines)


def ndcg_chart(report: dict[str, dict[str, float]], k: int) -> str:
    """nDCG per method as a text bar chart (readable in the UI and in logs alike)."""
    peak = max((report[m]["ndcg"] for m in METHODS), default=0.0)
    width = max(len(LABELS[m]) for m in METHODS)
    rows = [f"{LABELS[m]:<{width}} {'█' * (round(BAR * report[m]['ndcg'] / peak) if peak else 0)} "
            f"{report[m]['ndcg']:.3f}" for m in METHODS]
    return f"nDCG@{k} per method\n```\n" + "\n".join(rows) + "\n```"


def ratio(ours: float, theirs: float) -> float | str:
    """How many times better (text when the baseline scored zero)."""
    if theirs > 0:
        return round(ours / theirs, 3)
    return "baseline scored 0" if ours > 0 else "both scored 0"


@asset(
    deps=["series_watch_history", "series_embeddings"],
    group_name="recommendations",
    kinds={"postgres"},
    description="Offline hold-out evaluation of the recommender (tuned and default) against most-popular, the prior "
    "tool's content-only score, EASE and item-kNN, on this server's own history.",
)
@stage_body
def recommendation_quality(
    context: AssetExecutionContext, ai: AIProviderResource, database: DatabaseResource, pipeline: PipelineConfig
) -> MaterializeResult:
    started = time.perf_counter()
    k = pipeline.recommendations_per_user
    model = ai.model_key()
    with database.connect() as conn:
        catalog, histories = load_world(conn, model)
        disliked = disliked_shows(conn)
    report, users, tuning = evaluate(catalog, histories, datetime.now(UTC), k, disliked)
    metadata = {
        "users_evaluated": users,
        "k": k,
        "model": model,
        "table": MetadataValue.md(quality_table(report, k)),
        "ndcg_chart": MetadataValue.md(ndcg_chart(report, k)),
        "tuning": f"{tuning.reason}: " + ", ".join(f"{n} {v:g}" for n, v in tuning.as_dict()["chosen"].items()),
        "duration_seconds": round(time.perf_counter() - started, 3),
    }
    for method in METHODS:
        for name, value in report[method].items():
            metadata[f"{method}_{name}"] = round(value, 4)
    for baseline in BASELINES:
        metadata[f"ndcg_ratio_vs_{baseline}"] = ratio(report["aperture"]["ndcg"], report[baseline]["ndcg"])
        metadata[f"hit_rate_ratio_vs_{baseline}"] = ratio(report["aperture"]["hit_rate"],
                                                          report[baseline]["hit_rate"])
    context.log.info("recommendation quality:\n%s\n%s", quality_table(report, k), ndcg_chart(report, k))
    return MaterializeResult(metadata=metadata)
