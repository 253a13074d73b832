"""Pure recommendation maths (numpy only, no I/O): taste weights, multi-interest content similarity,
user-user collaborative signal, the blend, and maximal-marginal-relevance selection.

Why these choices:
- A single averaged taste vector blurs users with several tastes (crime dramas AND nature docs
  average into neither), so the content score of a candidate is the weighted mean similarity to its
  k most similar watched shows: each taste pulls its own neighbours up.
- On a family server, what similar users finished is a strong signal the prior tool ignores; it is
  blended in when there are other users with overlapping history.
- The community rating is only a weak prior, and MMR keeps the list from being twelve variants of
  one show.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

HALF_LIFE_DAYS = 180.0
RECENCY_FLOOR = 0.25
TOP_K = 5
MMR_LAMBDA = 0.75
WEIGHTS = {"content": 0.60, "collaborative": 0.30, "rating": 0.10}


@dataclass(frozen=True)
class Watched:
    """One show the user has history with (after merging duplicate copies)."""

    show: str
    episodes_watched: int
    episodes_available: int
    max_play_count: int
    is_favorite: bool
    last_watched_at: datetime | None


def taste_weight(w: Watched, now: datetime, half_life_days: float = HALF_LIFE_DAYS) -> float:
    """How much a watched show says about the user's taste: amount watched, completion, favourite,
    rewatch and recency (exponential half-life with a floor, so old favourites still count)."""
    amount = math.log1p(max(w.episodes_watched, 0))
    completion = min(w.episodes_watched / w.episodes_available, 1.0) if w.episodes_available else 0.0
    weight = amount * (0.5 + completion)
    if w.is_favorite:
        weight = max(weight, 0.5) * 1.5
    if w.max_play_count > 1:
        weight *= 1.0 + 0.25 * min(w.max_play_count - 1, 4)
    if w.last_watched_at is not None:
        age_days = max((now - w.last_watched_at).total_seconds() / 86400.0, 0.0)
        weight *= max(0.5 ** (age_days / half_life_days), RECENCY_FLOOR)
    return weight


def content_scores(candidates: np.ndarray, watched: np.ndarray, weights: np.ndarray, k: int = TOP_K,
                   same: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: weighted mean cosine similarity to its k most similar watched shows (rows are
    L2-normalised), and the similarity matrix (candidates x watched) for evidence. `same` marks
    (candidate, watched) pairs that are one show (a favourite not yet started): a show is no evidence
    for itself."""
    if len(candidates) == 0 or len(watched) == 0:
        return np.zeros(len(candidates)), np.zeros((len(candidates), len(watched)))
    sims = candidates @ watched.T
    if same is not None:
        sims = np.where(same, -1.0, sims)
    k = min(k, watched.shape[0])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    top_w = weights[top]
    scores = (top_sims * top_w).sum(axis=1) / np.maximum(top_w.sum(axis=1), 1e-9)
    return scores, sims


def collaborative_scores(user: Mapping[str, float], others: Mapping[str, Mapping[str, float]],
                         candidates: Sequence[str]) -> np.ndarray:
    """Score candidates by what users with similar histories watched (user-user cosine on taste
    weights), normalised to [0, 1]; zeros when no one overlaps."""
    if not user or not others:
        return np.zeros(len(candidates))
    norm_u = math.sqrt(sum(v * v for v in user.values()))
    totals = dict.fromkeys(candidates, 0.0)
    sim_sum = 0.0
    for other in others.values():
        overlap = sum(user[s] * other[s] for s in user.keys() & other.keys())
        if overlap <= 0:
            continue
        sim = overlap / (norm_u * math.sqrt(sum(v * v for v in other.values())))
        sim_sum += sim
        for show in totals.keys() & other.keys():
            totals[show] += sim * other[show]
    values = np.array([totals[c] for c in candidates], dtype=float)
    peak = values.max() if len(values) else 0.0
    return values / peak if peak > 0 else values


def rating_prior(ratings: Sequence[float | None]) -> np.ndarray:
    """Community rating mapped to [0, 1] (5 or below -> 0, 10 -> 1; unknown -> 0.3)."""
    return np.array([0.3 if r is None else min(max((r - 5.0) / 5.0, 0.0), 1.0) for r in ratings], dtype=float)


def blend(content: np.ndarray, collaborative: np.ndarray, rating: np.ndarray) -> np.ndarray:
    """Weighted blend; without any collaborative signal its weight goes to content."""
    w = dict(WEIGHTS)
    if not np.any(collaborative):
        w["content"] += w.pop("collaborative")
        collaborative = np.zeros_like(content)
    return w["content"] * content + w.get("collaborative", 0.0) * collaborative + w["rating"] * rating


def mmr(scores: np.ndarray, vectors: np.ndarray, n: int, lam: float = MMR_LAMBDA) -> list[int]:
    """Maximal marginal relevance: greedily take the best score minus similarity to what is already
    picked. Returns candidate indices in rank order."""
    chosen: list[int] = []
    if len(scores) == 0:
        return chosen
    remaining = np.ones(len(scores), dtype=bool)
    max_sim = np.zeros(len(scores))
    for _ in range(min(n, len(scores))):
        value = np.where(remaining, lam * scores - (1 - lam) * max_sim, -np.inf)
        best = int(np.argmax(value))
        chosen.append(best)
        remaining[best] = False
        max_sim = np.maximum(max_sim, vectors @ vectors[best])
    return chosen
