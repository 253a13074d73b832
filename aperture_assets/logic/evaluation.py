"""Offline evaluation on the server's own history (pure): hide each user's most recently started show, and
score every method on it in the same run. The tuned settings are tuned on the remaining history only (the
tuning splits it again), so the hidden show never informs the settings that are measured on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from aperture_assets.logic.collaborative import UserSignal, ease, item_knn
from aperture_assets.logic.recommend import (
    EXCLUDED_STATES,
    Catalog,
    History,
    Params,
    Rules,
    popular_baseline,
    prior_tool_baseline,
    ranking_metrics,
    recommend,
)
from aperture_assets.logic.tuning import (
    Neighbours,
    Tuning,
    as_of,
    default_params,
    hold_out,
    local_pool,
    split_view,
    tastes_of,
    tune,
)

MIN_SHOWS = 2  # watched shows a user keeps besides the hidden one
METHODS = ("aperture", "aperture_default", "popular", "prior_tool", "ease", "item_knn")
LABELS = {"aperture": "aperture (tuned)", "aperture_default": "aperture (default settings)",
          "popular": "most popular", "prior_tool": "content-only (prior tool)", "ease": "EASE alone",
          "item_knn": "item-kNN alone"}
METRICS = ("hit_rate", "recall", "ndcg")


def collaborative_baseline(catalog: Catalog, history: Sequence[History], signal: UserSignal,
                           count: int) -> list[str]:
    """A collaborative model alone: the user's highest scores among shows they haven't started (ties and
    shows no one started: by popularity)."""
    seen = {h.show for h in history if h.state in EXCLUDED_STATES}
    raw = np.array([signal.row[signal.index[s]] if s in signal.index else -np.inf for s in catalog.shows])
    order = np.lexsort((-catalog.popularity, -raw))
    return [catalog.shows[i] for i in order if catalog.shows[i] not in seen][:count]


def evaluate(catalog: Catalog, histories: Mapping[str, Sequence[History]], now: datetime, k: int,
             disliked: Mapping[str, frozenset[str]] | None = None) -> tuple[dict[str, dict[str, float]], int, Tuning]:
    """(mean hit-rate, recall and nDCG at k per method, users evaluated, the tuning of the aperture method)."""
    disliked = disliked or {}
    params = Params(count=k)
    train, hidden = hold_out(as_of(histories, now), 1, MIN_SHOWS)
    hidden = {u: shows for u, shows in hidden.items() if shows <= catalog.index.keys()}
    view = split_view(catalog, train)
    tuning = tune(view, train, now, params, disliked)
    default = default_params(params, sum(1 for t in tastes_of(train, now, params, disliked).values() if t))
    tastes = tastes_of(train, now, params, disliked)  # the matrix is binary: one model serves any half-life
    models = {"ease": ease(tastes), "item_knn": item_knn(tastes)}
    totals = {m: dict.fromkeys(METRICS, 0.0) for m in METHODS}
    neighbours = Neighbours(view)
    neighbours.prepare(view.index[s] for u in hidden for s in tastes[u] if s in view.index)
    for user in sorted(hidden):
        rest, rules = train[user], Rules(disliked=disliked.get(user, frozenset()))
        signal = models["ease"].signal(user)
        pool = local_pool(view, rest, list(tastes[user]), signal, neighbours)
        ranked = {
            "aperture": [p.show for p in recommend(view, rest, signal, now, tuning.params, pool, rules).picks],
            "aperture_default": [p.show for p in recommend(view, rest, signal, now, default, pool, rules).picks],
            "popular": popular_baseline(view, rest, k),
            "prior_tool": prior_tool_baseline(view, rest, now, k),
            "ease": collaborative_baseline(view, rest, models["ease"].signal(user), k),
            "item_knn": collaborative_baseline(view, rest, models["item_knn"].signal(user), k),
        }
        for method, shows in ranked.items():
            for name, v in ranking_metrics(shows, hidden[user], k).items():
                totals[method][name] += v
    n = len(hidden)
    return {m: {name: v / n if n else 0.0 for name, v in t.items()} for m, t in totals.items()}, n, tuning
