"""Offline evaluation on the server's own history (pure): hide each user's most recently started show, and
score every method on it in the same run. The tuned settings are tuned on the remaining history only (the
tuning splits it again), so the hidden show never informs the settings that are measured on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import islice

import numpy as np

from aperture_assets.logic.collaborative import UserSignal, ease, item_knn
from aperture_assets.logic.recommend import (
    EXCLUDED_STATES,
    Catalog,
    History,
    Params,
    Rules,
    Scored,
    content_only_baseline,
    popular_baseline,
    rank,
    ranking_metrics,
    retaste,
    score,
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
METHODS = ("aperture", "aperture_default", "popular", "content_only", "ease", "item_knn")
LABELS = {"aperture": "aperture (tuned)", "aperture_default": "aperture (default settings)",
          "popular": "most popular", "content_only": "content only (one averaged taste vector)", "ease": "EASE alone",
          "item_knn": "item-kNN alone"}
METRICS = ("hit_rate", "recall", "ndcg")


def collaborative_baseline(catalog: Catalog, history: Sequence[History], signal: UserSignal,
                           count: int, columns: np.ndarray | None = None) -> list[str]:
    """A collaborative model alone: the user's highest scores among shows they haven't started (ties and
    shows no one started: by popularity). `columns`: each catalog show's position in the signal (-1: none),
    the same for every user of a model."""
    seen = {h.show for h in history if h.state in EXCLUDED_STATES}
    if columns is None:
        columns = signal_columns(catalog, signal.index)
    raw = np.where(columns >= 0, signal.row[columns] if len(signal.row) else 0.0, -np.inf)
    order = np.lexsort((-catalog.popularity, -raw))
    return list(islice((s for s in map(catalog.shows.__getitem__, order) if s not in seen), count))


def signal_columns(catalog: Catalog, index: Mapping[str, int]) -> np.ndarray:
    return np.array([index.get(s, -1) for s in catalog.shows], dtype=np.intp)


def picks(catalog: Catalog, scored: Scored, params: Params) -> list[str]:
    """The shows `recommend` would pick from `scored`, in rank order."""
    order, _, _ = rank(scored, params)
    return [catalog.shows[scored.candidates[i]] for i in order]


def evaluate(catalog: Catalog, histories: Mapping[str, Sequence[History]], now: datetime, k: int,
             disliked: Mapping[str, frozenset[str]] | None = None) -> tuple[dict[str, dict[str, float]], int, Tuning]:
    """(mean hit-rate, recall and nDCG at k per method, users evaluated, the tuning of the aperture method)."""
    disliked = disliked or {}
    params = Params(count=k)
    train, hidden = hold_out(as_of(histories, now), 1, MIN_SHOWS)
    hidden = {u: shows for u, shows in hidden.items() if shows <= catalog.index.keys()}
    view = split_view(catalog, train)
    neighbours = Neighbours(view)
    tuning = tune(view, train, now, params, disliked, neighbours)
    default = default_params(params, sum(1 for t in tastes_of(train, now, params, disliked).values() if t))
    tastes = tastes_of(train, now, params, disliked)  # the matrix is binary: one model serves any half-life
    models = {"ease": ease(tastes), "item_knn": item_knn(tastes)}
    totals = {m: dict.fromkeys(METRICS, 0.0) for m in METHODS}
    neighbours.prepare(view.index[s] for u in hidden for s in tastes[u] if s in view.index)
    columns = {name: signal_columns(view, model.item_index) for name, model in models.items()}
    for user in sorted(hidden):
        rest, rules = train[user], Rules(disliked=disliked.get(user, frozenset()))
        signal = models["ease"].signal(user)
        pool = local_pool(view, rest, list(tastes[user]), signal, neighbours)
        scored = score(view, rest, signal, now, default, pool, rules)  # once; the tuned half-life re-weights it
        ranked = {
            "aperture": picks(view, retaste(scored, view, rest, now, tuning.params, rules), tuning.params),
            "aperture_default": picks(view, scored, default),
            "popular": popular_baseline(view, rest, k),
            "content_only": content_only_baseline(view, rest, now, k),
            "ease": collaborative_baseline(view, rest, signal, k, columns["ease"]),
            "item_knn": collaborative_baseline(view, rest, models["item_knn"].signal(user), k, columns["item_knn"]),
        }
        for method, shows in ranked.items():
            for name, v in ranking_metrics(shows, hidden[user], k).items():
                totals[method][name] += v
    n = len(hidden)
    return {m: {name: v / n if n else 0.0 for name, v in t.items()} for m, t in totals.items()}, n, tuning
