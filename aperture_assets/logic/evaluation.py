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
    content_only_baseline,
    popular_baseline,
    ranked_shows,
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


def evaluate(catalog: Catalog, histories: Mapping[str, Sequence[History]], now: datetime, k: int,
             disliked: Mapping[str, frozenset[str]] | None = None) -> tuple[dict[str, dict[str, float]], int, Tuning]:
    """(mean hit-rate, recall and nDCG at k per method, users evaluated, the tuning of the aperture method)."""
    per_user, tuning = evaluate_users(catalog, histories, now, k, disliked)
    totals = {m: dict.fromkeys(METRICS, 0.0) for m in METHODS}
    for scores in per_user.values():
        for method, metrics in scores.items():
            for name, v in metrics.items():
                totals[method][name] += v
    n = len(per_user)
    return {m: {name: v / n if n else 0.0 for name, v in t.items()} for m, t in totals.items()}, n, tuning


def evaluate_users(catalog: Catalog, histories: Mapping[str, Sequence[History]], now: datetime, k: int,
                   disliked: Mapping[str, frozenset[str]] | None = None
                   ) -> tuple[dict[str, dict[str, dict[str, float]]], Tuning]:
    """What `evaluate` averages: for each evaluated user (in sorted order), hit-rate, recall and nDCG at k per
    method; and the tuning of the aperture method. For measuring the noise of the means across users."""
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
    per_user: dict[str, dict[str, dict[str, float]]] = {}
    neighbours.prepare(view.index[s] for u in hidden for s in tastes[u] if s in view.index)
    columns = {name: signal_columns(view, model.item_index) for name, model in models.items()}
    for user in sorted(hidden):
        rest, rules = train[user], Rules(disliked=disliked.get(user, frozenset()))
        signal = models["ease"].signal(user)
        pool = local_pool(view, rest, list(tastes[user]), signal, neighbours)
        scored = score(view, rest, signal, now, default, pool, rules)  # once; the tuned half-life re-weights it
        ranked = {
            "aperture": ranked_shows(view, retaste(scored, view, rest, now, tuning.params, rules), tuning.params),
            "aperture_default": ranked_shows(view, scored, default),
            "popular": popular_baseline(view, rest, k),
            "content_only": content_only_baseline(view, rest, now, k),
            "ease": collaborative_baseline(view, rest, signal, k, columns["ease"]),
            "item_knn": collaborative_baseline(view, rest, models["item_knn"].signal(user), k, columns["item_knn"]),
        }
        per_user[user] = {method: ranking_metrics(shows, hidden[user], k) for method, shows in ranked.items()}
    return per_user, tuning


def bootstrap_ratio(numerator: Sequence[float] | np.ndarray, denominators: Sequence[float] | np.ndarray,
                    resamples: int = 1000, seed: int = 0, level: float = 0.9) -> tuple[float, float, float]:
    """(ratio, low, high): the mean of `numerator` over the highest mean among `denominators` (one row per
    baseline, or a single row), each a per-user score over the same users in the same order, and a percentile
    bootstrap interval at `level`: resample the users with replacement (the same users for the numerator and
    every denominator), pick the highest baseline anew in each resample, and take the quantiles of the
    resampled ratios. A baseline mean of 0 gives an infinite ratio. Deterministic for a `seed`."""
    num = np.asarray(numerator, dtype=float)
    den = np.atleast_2d(np.asarray(denominators, dtype=float))
    if num.ndim != 1 or den.ndim != 2 or den.shape[1] != len(num) or not len(num):
        raise ValueError("numerator and each denominator need one score per user, the same users, at least one")

    def ratios(num_means: np.ndarray, den_means: np.ndarray) -> np.ndarray:
        best = den_means.max(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(best > 0, num_means / np.where(best > 0, best, 1.0), np.inf)

    point = float(ratios(np.array([num.mean()]), den.mean(axis=1)[:, None])[0])
    drawn = np.random.default_rng(seed).integers(0, len(num), size=(resamples, len(num)))
    resampled = ratios(num[drawn].mean(axis=1), den[:, drawn].mean(axis=2))
    low, high = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return point, float(low), float(high)
