"""`recommendation_quality`: offline evaluation of the recommender on the server's own history.

For every user with at least `MIN_SHOWS` watched shows, hide their most recently started show,
recommend from the rest, and score hit-rate@K, recall@K and nDCG@K, for aperture and for two
baselines computed in the same run: most-popular-unwatched and the prior tool's content-only score.
With one hidden show per user, recall@K equals hit-rate@K; both are reported as the issue asks.
"""


import time
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from aperture_assets.defs.recommendations.assets import load_world, recommend_user, tastes
from aperture_assets.logic.recommend import (
    Catalog,
    History,
    Params,
    Rules,
    popular_baseline,
    prior_tool_baseline,
    ranking_metrics,
    taste,
)
from aperture_assets.wiring.stage import stage_body
from aperture_resources.ai import AIProviderResource
from aperture_resources.database import DatabaseResource
from aperture_resources.pipeline_config import PipelineConfig

MIN_SHOWS = 3
METHODS = ("aperture", "popular", "prior_tool")


def held_out(history: list[History]) -> str | None:
    """The most recently started show (first play latest), among shows actually watched."""
    watched = [h for h in history if h.watched.episodes_watched > 0]
    if len(watched) < MIN_SHOWS:
        return None
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return max(watched, key=lambda h: (h.started_at or h.watched.last_watched_at or epoch, h.show)).show


def evaluate(conn, model: str, catalog: Catalog, histories: dict[str, list[History]], k: int,
             now: datetime) -> dict[str, dict[str, float]]:
    """Mean metrics per method, plus the number of users evaluated under "users"."""
    totals = {m: {"hit_rate": 0.0, "recall": 0.0, "ndcg": 0.0} for m in METHODS}
    users = 0
    params = Params(count=k)
    weights = tastes(histories, now, params, {})
    for user_id, history in histories.items():
        hidden = held_out(history)
        if hidden is None or hidden not in catalog.index:
            continue
        rest = [h for h in history if h.show != hidden]
        visible = {**histories, user_id: rest}
        view = replace(catalog, popularity=np.zeros(0))
        view.count_watchers(visible)
        ranked = {
            "aperture": [p.show for p in recommend_user(
                conn, model, view, visible, {**weights, user_id: taste(rest, now, params)},
                user_id, params, now, Rules()).picks],
            "popular": popular_baseline(view, rest, k),
            "prior_tool": prior_tool_baseline(view, rest, now, k),
        }
        for method, shows in ranked.items():
            for name, value in ranking_metrics(shows, {hidden}, k).items():
                totals[method][name] += value
        users += 1
    means = {m: {name: (v / users if users else 0.0) for name, v in metrics.items()} for m, metrics in totals.items()}
    return {**means, "users": {"count": float(users)}}


def quality_table(report: dict[str, dict[str, float]], k: int) -> str:
    lines = [f"| Method | hit-rate@{k} | recall@{k} | nDCG@{k} |", "|---|---|---|---|"]
    for method in METHODS:
        m = report[method]
        lines.append(f"| {method} | {m['hit_rate']:.3f} | {m['recall']:.3f} | {m['ndcg']:.3f} |")
    return "\n".join(lines)


def ratio(ours: float, theirs: float) -> float | str:
    """How many times better (text when the baseline scored zero)."""
    if theirs > 0:
        return round(ours / theirs, 3)
    return "baseline scored 0" if ours > 0 else "both scored 0"


@asset(
    deps=["series_watch_history", "series_embeddings"],
    group_name="recommendations",
    kinds={"postgres"},
    description="Offline hold-out evaluation of the recommender against most-popular and the prior tool's "
    "content-only score, on this server's own history.",
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
        report = evaluate(conn, model, catalog, histories, k, datetime.now(UTC))
    ours = report["aperture"]
    metadata = {
        "users_evaluated": int(report["users"]["count"]),
        "k": k,
        "model": model,
        "table": MetadataValue.md(quality_table(report, k)),
        "duration_seconds": round(time.perf_counter() - started, 3),
    }
    for method in METHODS:
        for name, value in report[method].items():
            metadata[f"{method}_{name}"] = round(value, 4)
    for baseline in ("popular", "prior_tool"):
        metadata[f"ndcg_ratio_vs_{baseline}"] = ratio(ours["ndcg"], report[baseline]["ndcg"])
        metadata[f"hit_rate_ratio_vs_{baseline}"] = ratio(ours["hit_rate"], report[baseline]["hit_rate"])
    context.log.info("recommendation quality:\n%s", quality_table(report, k))
    return MaterializeResult(metadata=metadata)
