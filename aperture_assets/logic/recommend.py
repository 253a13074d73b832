"""Ranking picks for one user, and the simple baselines it is measured against (pure, no I/O).

`recommend` applies the spec's exclusion table (started, caught-up and completed shows are out; a
show being Ended is never a reason) and the user's `Rules` (what the server lets them open, their
dislikes, the admin's genre and tag exclusions), scores the rest (`score`: content, the collaborative
signal, popularity and rating, each normalised), pulls down close neighbours of what they disliked or
dropped, blends them with the run's weights and picks a diverse top N with MMR (`rank`). Scoring and
ranking are separate so the tuning can rank one user's scores under many settings. Users without history
get a cold-start list (popular on this server, then highly rated), marked as such.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice

import numpy as np

from aperture_assets.logic.collaborative import EASE_LAMBDA, UserSignal
from aperture_assets.logic.scoring import (
    HALF_LIFE_DAYS,
    MMR_LAMBDA,
    TOP_K,
    WEIGHTS,
    Watched,
    Weights,
    content_scores,
    mmr,
    popularity_prior,
    rating_prior,
    taste_weight,
    weighted_top,
)

EXCLUDED_STATES = ("in_progress", "caught_up", "completed")
EVIDENCE = 3
# A pick's score is the sum of these components, minus "negative" (how far disliked or dropped shows pull it down)
SHOWN_COMPONENTS = ("content", "collaborative", "popularity", "rating", "negative")
SHORTLIST = 10
REMOVAL_RULES = ("access", "rating", "tags", "dislikes", "exclusions")  # counted in this order
# How far a disliked or dropped show pulls its close neighbours down: scores are ~[0, 1]; only neighbours
# more similar than CLOSE are touched, in proportion to how far above it they are.
NEGATIVE = {"disliked": 0.4, "dropped": 0.15}
CLOSE = 0.5


@dataclass(frozen=True)
class History:
    """What one user did with one show (duplicate copies merged)."""

    show: str
    state: str
    watched: Watched
    started_at: datetime | None = None


@dataclass(frozen=True)
class Params:
    count: int = 12
    top_k: int = TOP_K
    mmr_lambda: float = MMR_LAMBDA
    half_life_days: float = HALF_LIFE_DAYS
    weights: Weights = WEIGHTS
    ease_lambda: float = EASE_LAMBDA
    dropped_max_share: float = 0.25
    dropped_max_episodes: int = 3
    dropped_after_days: int = 60

    def as_dict(self) -> dict:
        return {"count": self.count, "top_k": self.top_k, "mmr_lambda": self.mmr_lambda,
                "half_life_days": self.half_life_days, "weights": self.weights.as_dict(),
                "ease_lambda": self.ease_lambda, "negative": NEGATIVE,
                "dropped_max_share": self.dropped_max_share, "dropped_max_episodes": self.dropped_max_episodes,
                "dropped_after_days": self.dropped_after_days}


@dataclass(frozen=True)
class Rules:
    """What keeps shows from one user's picks besides their own history."""

    refused: Mapping[str, str] = field(default_factory=dict)  # show -> "access" | "rating" | "tags"
    copies: Mapping[str, str] = field(default_factory=dict)  # show -> the copy (series id) the user may open
    disliked: frozenset[str] = frozenset()  # shows
    excluded_genres: frozenset[str] = frozenset()  # case-folded
    excluded_tags: frozenset[str] = frozenset()  # case-folded

    def removal(self, catalog: Catalog, row: int) -> str | None:
        """The first of REMOVAL_RULES that keeps the show at `row` out, or None."""
        show = catalog.shows[row]
        if show in self.refused:
            return self.refused[show]
        if show in self.disliked:
            return "dislikes"
        if (self.excluded_genres and any(g.casefold() in self.excluded_genres for g in catalog.genres[row])) or \
                (self.excluded_tags and any(t.casefold() in self.excluded_tags for t in catalog.tags[row])):
            return "exclusions"
        return None


@dataclass
class Catalog:
    """Every active show with a vector: parallel lists plus an L2-normalised matrix."""

    shows: list[str]
    series_ids: list[str]
    names: list[str]
    ratings: list[float | None]
    genres: list[list[str]]
    vectors: np.ndarray
    popularity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tags: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.index = {show: i for i, show in enumerate(self.shows)}
        if len(self.popularity) != len(self.shows):
            self.popularity = np.zeros(len(self.shows))
        if len(self.tags) != len(self.shows):
            self.tags = [[] for _ in self.shows]
        self._popular: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # kind -> (popularity, the order)
        self._genres: tuple[np.ndarray, np.ndarray] | None = None

    def count_watchers(self, histories: Mapping[str, Sequence[History]]) -> None:
        """Popularity = how many users have watched at least one episode of each show."""
        counts = Counter(h.show for hs in histories.values() for h in hs if h.watched.episodes_watched > 0)
        self.popularity = np.array([counts.get(s, 0) for s in self.shows], dtype=float)

    def genre_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(shows x genres incidence, each show's rating tier), built once: the prior-tool baseline needs them
        for every evaluated user."""
        if self._genres is None:
            names = sorted({g for gs in self.genres for g in gs})
            col = {g: j for j, g in enumerate(names)}
            matrix = np.zeros((len(self.shows), len(names)), dtype=bool)
            for i, gs in enumerate(self.genres):
                matrix[i, [col[g] for g in gs]] = True
            self._genres = (matrix, np.array([_rating_tier(r) for r in self.ratings], dtype=float))
        return self._genres

    def popular_order(self) -> np.ndarray:
        """Rows from the most watched down (stable), sorted once rather than once per user."""
        return self._ordered("stable", lambda: np.argsort(-self.popularity, kind="stable"))

    def baseline_order(self) -> np.ndarray:
        """Rows by popularity, then community rating, then show key: the most-popular baseline's order."""
        return self._ordered("baseline", lambda: np.lexsort((
            np.argsort(np.argsort(np.array(self.shows, dtype=object), kind="stable")),
            -np.array([r or 0.0 for r in self.ratings], dtype=float), -self.popularity)))

    def _ordered(self, kind: str, order: Callable[[], np.ndarray]) -> np.ndarray:
        if kind not in self._popular or self._popular[kind][0] is not self.popularity:
            self._popular[kind] = (self.popularity, order())
        return self._popular[kind][1]


@dataclass(frozen=True)
class Pick:
    rank: int
    show: str
    series_id: str
    name: str
    score: float
    components: dict
    evidence: list[dict]


@dataclass
class Result:
    picks: list[Pick]
    cold_start: bool
    excluded: dict[str, int]
    removed: dict[str, int] = field(default_factory=dict)  # candidates each of REMOVAL_RULES kept out


def dropped(h: History, now: datetime, params: Params) -> bool:
    """Started and abandoned: a few episodes and a small share of it watched, nothing played for a while, not
    a favourite. Such a show says the user tried it and stopped, so it is a weak negative rather than taste.
    (A whole season of a long show is a small share too, but no sign of dropping: hence both limits.)"""
    w = h.watched
    if w.is_favorite or w.episodes_watched <= 0 or w.episodes_available <= 0 or w.last_watched_at is None:
        return False
    idle_days = (now - w.last_watched_at).total_seconds() / 86400.0
    return (w.episodes_watched <= params.dropped_max_episodes
            and w.episodes_watched / w.episodes_available <= params.dropped_max_share
            and idle_days >= params.dropped_after_days)


def taste(history: Sequence[History], now: datetime, params: Params = Params(),
          disliked: frozenset[str] = frozenset()) -> dict[str, float]:
    """Show -> taste weight, for shows with any watching or a favourite, leaving out those the user dropped or
    disliked."""
    return {h.show: taste_weight(h.watched, now, params.half_life_days) for h in history
            if (h.watched.episodes_watched > 0 or h.watched.is_favorite) and h.show not in disliked
            and not dropped(h, now, params)}


def signal(w: Watched) -> str:
    """What kind of taste evidence a watched show is."""
    return "favourite" if w.is_favorite else "rewatched" if w.max_play_count > 1 else "watched"


def negatives(catalog: Catalog, history: Sequence[History], rules: Rules, now: datetime,
              params: Params) -> dict[str, list[int]]:
    """Catalog rows of the shows the user disliked and the ones they dropped."""
    rows = {"disliked": [catalog.index[s] for s in sorted(rules.disliked) if s in catalog.index]}
    rows["dropped"] = [catalog.index[h.show] for h in history if h.show in catalog.index
                       and h.show not in rules.disliked and dropped(h, now, params)]
    return rows


def penalties(vectors: np.ndarray, catalog: Catalog, negative_rows: Mapping[str, list[int]]) -> \
        tuple[np.ndarray, dict[int, list[dict]]]:
    """How much each candidate is pulled down by close neighbours the user disliked or dropped, and for the
    candidates pulled down the evidence of it (the closest such show of each kind)."""
    total = np.zeros(len(vectors))
    evidence: dict[int, list[dict]] = {}
    for kind, rows in negative_rows.items():
        if not rows or not len(vectors):
            continue
        sims = vectors @ catalog.vectors[rows].T
        best = sims.argmax(axis=1)
        closest = sims[np.arange(len(vectors)), best]
        pull = NEGATIVE[kind] * np.clip((closest - CLOSE) / (1.0 - CLOSE), 0.0, None)
        total += pull
        for i in np.flatnonzero(pull > 0.005):
            row = rows[best[i]]
            evidence.setdefault(int(i), []).append({
                "series_id": catalog.series_ids[row], "name": catalog.names[row],
                "similarity": round(float(closest[i]), 3), "signal": kind, "effect": -round(float(pull[i]), 4)})
    return total, evidence


@dataclass
class Scored:
    """One user's candidates with every component computed (each normalised to about [0, 1]), ready to be
    blended and ranked under any weights: the tuning ranks the same `Scored` under many settings."""

    candidates: list[int]  # catalog rows
    catalog_vectors: np.ndarray  # the catalog's matrix itself (shared; ranking reads only its shortlist's rows)
    components: dict[str, np.ndarray]  # content, collaborative, popularity, rating, negative (a pull down)
    cold_start: bool
    excluded: dict[str, int]
    removed: dict[str, int]
    anchors: list[int] = field(default_factory=list)  # catalog rows of the user's taste shows
    sims: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # candidates x anchors
    against: dict[int, list[dict]] = field(default_factory=dict)  # candidate index -> disliked/dropped evidence

    def slim(self) -> Scored:
        """Only what ranking needs (the tuning keeps many users' `Scored` at once; evidence is for picks)."""
        return replace(self, sims=np.zeros((0, 0), dtype=np.float32), against={})


def score(catalog: Catalog, history: Sequence[History], collab: UserSignal | Mapping[str, float],
          now: datetime, params: Params = Params(), pool: set[str] | None = None, rules: Rules = Rules()) -> Scored:
    """Candidates for one user and their components. `collab`: the user's collaborative signal; `pool`: the
    candidate shows to consider (None = the whole catalog); `rules`: what the user may not get."""
    excluded = Counter(h.state for h in history if h.state in EXCLUDED_STATES)
    blocked = {h.show for h in history if h.state in EXCLUDED_STATES}
    removed = dict.fromkeys(REMOVAL_RULES, 0)
    candidates = []
    rows = range(len(catalog.shows)) if pool is None else sorted(catalog.index[s] for s in pool if s in catalog.index)
    refused, disliked, shows = rules.refused, rules.disliked, catalog.shows
    by_genre_or_tag = bool(rules.excluded_genres or rules.excluded_tags)
    for i in rows:  # rules.removal inlined for the common cases: this loop runs over every candidate of every user
        show = shows[i]
        if show in blocked:
            continue
        reason = refused.get(show) or ("dislikes" if show in disliked else None) or \
            (rules.removal(catalog, i) if by_genre_or_tag else None)
        if reason is None:
            candidates.append(i)
        else:
            removed[reason] += 1
    mine = {show: w for show, w in taste(history, now, params, rules.disliked).items()
            if show in catalog.index}
    vectors = catalog.vectors[candidates]
    rating = rating_prior([catalog.ratings[i] for i in candidates])
    penalty, against = penalties(vectors, catalog, negatives(catalog, history, rules, now, params))
    components = {"rating": rating, "negative": penalty}
    if not mine:
        components["popularity"] = _unit(catalog.popularity[candidates])
        return Scored(candidates, catalog.vectors, components, True, dict(excluded), removed, against=against)
    anchors = [catalog.index[s] for s in mine]
    same = np.asarray(candidates)[:, None] == np.asarray(anchors)[None, :]
    content, sims = content_scores(vectors, catalog.vectors[anchors], np.array(list(mine.values())),
                                   params.top_k, same)
    signal_ = collab if isinstance(collab, UserSignal) else UserSignal.of(collab)
    components.update(content=_unit(content - content.min()) if len(content) else content,
                      collaborative=signal_.for_shows([catalog.shows[i] for i in candidates]),
                      popularity=popularity_prior(catalog.popularity[candidates]))
    return Scored(candidates, catalog.vectors, components, False, dict(excluded), removed, anchors, sims, against)


def retaste(scored: Scored, catalog: Catalog, history: Sequence[History], now: datetime, params: Params,
            rules: Rules = Rules()) -> Scored:
    """`scored` (from `score`, with its similarities) with the content component of `params`'s taste weights:
    the same as scoring again under another recency half-life, without the similarities' cost."""
    if scored.cold_start:
        return scored
    mine = [w for show, w in taste(history, now, params, rules.disliked).items() if show in catalog.index]
    content = weighted_top(scored.sims, np.array(mine), params.top_k)
    return replace(scored, components={**scored.components,
                                       "content": _unit(content - content.min()) if len(content) else content})


def contributions(scored: Scored, weights: Weights) -> dict[str, np.ndarray]:
    """Each component's share of the score (the score is their sum minus "negative"), the weights scaled to sum
    to 1 so the pull of disliked and dropped shows weighs the same under any blend; cold start: 0.6 popularity
    + 0.4 rating."""
    c = scored.components
    if scored.cold_start:
        return {"popularity": 0.6 * c["popularity"], "rating": 0.4 * c["rating"], "negative": c["negative"]}
    w_content, w_collab = weights.content, weights.collaborative
    if not np.any(c["collaborative"]):  # no signal: its weight goes to content
        w_content, w_collab = w_content + w_collab, 0.0
    total = max(w_content + w_collab + weights.popularity + weights.rating, 1e-9)
    return {"content": w_content / total * c["content"], "collaborative": w_collab / total * c["collaborative"],
            "popularity": weights.popularity / total * c["popularity"],
            "rating": weights.rating / total * c["rating"], "negative": c["negative"]}


def rank(scored: Scored, params: Params) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(indices into the candidates in rank order, every candidate's score, per ranked pick its highest
    similarity to the picks above it when MMR chose it; zeros for cold start, which is not diversified)."""
    parts = contributions(scored, params.weights)
    scores = sum((v for name, v in parts.items() if name != "negative"), -parts["negative"])
    if scored.cold_start:
        order = [int(i) for i in np.argsort(-scores, kind="stable")[: params.count]]
        return order, scores, np.zeros(len(order))
    # MMR among the best SHORTLIST x count by score: a pick further down could only win on variety, which
    # the shortlist already offers, and it keeps ranking cheap enough to rank many times while tuning
    top = np.argsort(-scores, kind="stable")[: SHORTLIST * params.count]
    vectors = scored.catalog_vectors[np.asarray(scored.candidates, dtype=np.intp)[top]]
    order, overlap = mmr(scores[top], vectors, params.count, params.mmr_lambda)
    return [int(top[i]) for i in order], scores, overlap


def ranked_shows(catalog: Catalog, scored: Scored, params: Params) -> list[str]:
    """The shows `recommend` would pick from `scored`, in rank order (for measuring rankings)."""
    order, _, _ = rank(scored, params)
    return [catalog.shows[scored.candidates[i]] for i in order]


def recommend(catalog: Catalog, history: Sequence[History], collab: UserSignal | Mapping[str, float],
              now: datetime, params: Params = Params(), pool: set[str] | None = None,
              rules: Rules = Rules()) -> Result:
    """Rank picks for one user (see `score` for the arguments), each with its score's components and the
    evidence behind them: the watched shows most similar to it and those whose viewers watched it."""
    scored = score(catalog, history, collab, now, params, pool, rules)
    order, scores, overlap = rank(scored, params)
    parts = contributions(scored, params.weights)
    shows = [catalog.shows[scored.candidates[i]] for i in order]
    co_watched = {} if scored.cold_start else \
        (collab if isinstance(collab, UserSignal) else UserSignal.of(collab)).because(shows)
    kinds = {h.show: signal(h.watched) for h in history}
    picks = []
    for r, (i, show) in enumerate(zip(order, shows, strict=True), start=1):
        evidence = [] if scored.cold_start else \
            _taste_evidence(catalog, scored, i, co_watched.get(show, []), kinds)
        components = {name: part[i] for name, part in parts.items()}
        components["mmr_similarity"] = overlap[r - 1]
        picks.append(_pick(catalog, rules, scored.candidates[i], r, scores[i], components,
                           evidence + scored.against.get(i, [])))
    return Result(picks, scored.cold_start, scored.excluded, scored.removed)


def _taste_evidence(catalog: Catalog, scored: Scored, i: int, co_watched: list[tuple[str, float]],
                    kinds: Mapping[str, str]) -> list[dict]:
    """The watched shows most similar to candidate `i`, then those that drove its collaborative score
    (a show in both lists appears once, marked with both sources)."""
    sims = scored.sims[i]
    out: dict[str, dict] = {}
    for j in np.argsort(-sims)[:EVIDENCE]:
        if sims[j] > -1.0:
            row = scored.anchors[j]
            out[catalog.shows[row]] = {"series_id": catalog.series_ids[row], "name": catalog.names[row],
                                       "similarity": round(float(sims[j]), 3),
                                       "signal": kinds.get(catalog.shows[row], "watched"), "source": "content"}
    position = {row: j for j, row in enumerate(scored.anchors)}
    for show, weight in co_watched:
        row = catalog.index.get(show)
        if row is None:
            continue
        entry = out.setdefault(show, {
            "series_id": catalog.series_ids[row], "name": catalog.names[row],
            "similarity": round(float(sims[position[row]]), 3) if row in position else 0.0,
            "signal": kinds.get(show, "watched"), "source": "collaborative"})
        if entry["source"] == "content":
            entry["source"] = "content+collaborative"
        entry["co_watch_weight"] = round(weight, 4)
    return list(out.values())


def _pick(catalog: Catalog, rules: Rules, row: int, rank: int, score: float, components: dict,
          evidence: list[dict]) -> Pick:
    show = catalog.shows[row]
    return Pick(rank, show, rules.copies.get(show, catalog.series_ids[row]), catalog.names[row],
                round(float(score), 4), {k: round(float(v), 4) for k, v in components.items()}, evidence)


def _unit(values: np.ndarray) -> np.ndarray:
    peak = values.max() if len(values) else 0.0
    return values / peak if peak > 0 else np.zeros_like(values, dtype=float)


# -- baselines for the offline evaluation -----------------------------------------------------------

def popular_baseline(catalog: Catalog, history: Sequence[History], count: int) -> list[str]:
    """Most-watched shows on the server the user hasn't started (ties: community rating)."""
    seen = {h.show for h in history if h.state in EXCLUDED_STATES}
    return list(islice((s for s in map(catalog.shows.__getitem__, catalog.baseline_order()) if s not in seen), count))


def content_only_weight(w: Watched, now: datetime) -> float:
    """The content-only baseline's taste weight (as a common recommender publishes it): 1 + log10(episodes),
    completion and favourite multipliers, 180-day recency half-life with a 0.25 floor."""
    weight = 1.0 + math.log10(max(w.episodes_watched, 1))
    completion = w.episodes_watched / w.episodes_available if w.episodes_available else 0.0
    weight *= 1.5 if completion > 0.9 else 1.2 if completion > 0.5 else 1.0
    weight *= 1.5 if w.is_favorite else 1.0
    if w.last_watched_at is not None:
        age = max((now - w.last_watched_at).total_seconds() / 86400.0, 0.0)
        weight *= max(0.5 ** (age / 180.0), 0.25)
    return weight


def _rating_tier(rating: float | None) -> float:
    if rating is None:
        return 0.5
    return next((score for floor, score in ((8.5, 1.0), (7.5, 0.8), (6.5, 0.6), (5.5, 0.4)) if rating >= floor), 0.2)


def content_only_baseline(catalog: Catalog, history: Sequence[History], now: datetime, count: int) -> list[str]:
    """A content-only ranking as a common recommender publishes it: one averaged taste vector, any started
    show excluded, 0.4 similarity + 0.2 genre novelty + 0.2 rating tier + 0.2 greedy genre diversity
    (vectorised over the catalog: it runs for every evaluated user)."""
    watched = [h for h in history if (h.watched.episodes_watched > 0 or h.watched.is_favorite)
               and h.show in catalog.index]
    started = {h.show for h in history if h.watched.episodes_watched > 0 or h.state == "in_progress"}
    candidates = np.array([i for i in range(len(catalog.shows)) if catalog.shows[i] not in started], dtype=np.intp) \
        if started else np.arange(len(catalog.shows))
    if not watched or not len(candidates):
        return popular_baseline(catalog, history, count)
    profile = sum(content_only_weight(h.watched, now) * catalog.vectors[catalog.index[h.show]] for h in watched)
    profile = profile / max(np.linalg.norm(profile), 1e-12)
    all_genres, tiers = catalog.genre_matrix()
    seen = all_genres[[catalog.index[h.show] for h in watched]].any(axis=0)
    genres, tiers = all_genres[candidates], tiers[candidates]
    sizes = genres.sum(axis=1)
    per_genre = np.maximum(sizes, 1)
    novelty = np.where(sizes > 0, (genres & ~seen).sum(axis=1) / per_genre, 0.5)
    base = 0.4 * (catalog.vectors[candidates] @ profile).astype(float) + 0.2 * novelty + 0.2 * tiers
    chosen: list[int] = []
    picked = np.zeros(genres.shape[1], dtype=bool)
    open_ = np.ones(len(candidates), dtype=bool)
    for _ in range(min(count, len(candidates))):
        overlap = np.where(sizes > 0, (genres & picked).sum(axis=1) / per_genre, 0.0)
        best = int(np.argmax(np.where(open_, base + 0.2 * (1.0 - overlap), -np.inf)))
        chosen.append(best)
        open_[best] = False
        picked |= genres[best]
    return [catalog.shows[candidates[i]] for i in chosen]


def ranking_metrics(ranked: Sequence[str], relevant: set[str], k: int) -> dict[str, float]:
    """hit-rate@k, recall@k and nDCG@k of one ranked list."""
    top = list(ranked)[:k]
    gains = [1.0 / math.log2(r + 2) for r, show in enumerate(top) if show in relevant]
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(len(relevant), k)))
    hits = len(gains)
    return {"hit_rate": float(hits > 0), "recall": hits / len(relevant) if relevant else 0.0,
            "ndcg": sum(gains) / ideal if ideal else 0.0}
