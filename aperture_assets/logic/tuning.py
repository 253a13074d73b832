"""Per-server tuning of the blend, on the server's own history (pure, no I/O).

Every server differs (a family of three, a 200-user community), so each run chooses its settings by a
time split: hide each user's most recently started shows, recommend from what came before, and keep the
settings with the best nDCG@K on the hidden shows. The search tries a few whole blends (`PRESETS`), then a
few passes of coordinate ascent over a small fixed grid (content, collaborative, popularity and rating
weights, recency half-life, MMR lambda, EASE's regularisation), starting from the defaults; a change must beat
the current best by more than noise (`better`), so a lucky hit on a few users does not move it. With fewer
than `MIN_USERS` users holding enough history the defaults stand. Nothing started after the run's clock is
seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from aperture_assets.logic.collaborative import ItemScores, UserSignal, ease
from aperture_assets.logic.recommend import (
    EXCLUDED_STATES,
    Catalog,
    History,
    Params,
    Rules,
    Scored,
    ranked_shows,
    ranking_metrics,
    retaste,
    score,
    taste,
)
from aperture_assets.logic.scoring import SMALL_SERVER_USERS, SMALL_SERVER_WEIGHTS, WEIGHTS, Weights

MIN_USERS = 5  # users with enough history to tune on; fewer -> the defaults (tuning 3-user servers on their own
# history, even over several time splits, did worse than the defaults: synthetic households 1.25x most-popular
# against 1.41x)
MIN_SHOWS = 3  # watched shows a user keeps besides the hidden ones
HIDE = 2  # most recently started shows hidden per user
MAX_USERS = 150  # validation users on big servers (an even spread): bounds the cost, not the quality
MARGIN = 0.005  # mean nDCG a change must gain
# ... and this many standard errors of the per-user gains: the grid is dozens of comparisons, and with one
# standard error the tuning chased noise (four synthetic libraries: tuned 1.01x EASE, its defaults 1.05x)
NOISE = 2.0
PASSES = 2
NEIGHBOURS = 100  # content neighbours per watched show in the candidate pool (as the asset's pgvector pool)
COLLABORATIVE_POOL = 100
POPULAR_POOL = 50
GRID: dict[str, tuple[float, ...]] = {
    "content": (0.2, 0.4, 0.55, 0.7, 0.9),
    "collaborative": (0.0, 0.1, 0.3, 0.5, 0.8),
    "popularity": (0.0, 0.1, 0.25, 0.5),
    "rating": (0.0, 0.05, 0.15),
    "mmr_lambda": (0.6, 0.75, 0.9, 1.0),
    "half_life_days": (60.0, 180.0, 720.0),
    "ease_lambda": (20.0, 100.0, 500.0),
}
# Whole blends tried before the one-setting steps, which could not reach them from the defaults: a server where
# co-watching alone (as EASE) or popularity alone wins must not lose to it.
PRESETS: tuple[dict, ...] = (
    {"weights": Weights(content=0.0, collaborative=1.0, popularity=0.0, rating=0.0), "mmr_lambda": 1.0},
    {"weights": Weights(content=0.1, collaborative=0.0, popularity=1.0, rating=0.0), "mmr_lambda": 1.0},
    {"weights": Weights(content=0.3, collaborative=0.3, popularity=0.5, rating=0.0)},
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NONE = np.zeros(0, dtype=np.int32)


@dataclass
class Tuning:
    """The settings a run uses and how they were chosen."""

    params: Params
    defaults: Params
    reason: str  # "tuned" or why the defaults stand
    users: int = 0  # validation users
    ndcg: float = 0.0  # validation nDCG@K of the chosen settings
    default_ndcg: float = 0.0
    tried: list[dict] = field(default_factory=list)  # every setting scored: its values and nDCG

    def as_dict(self) -> dict:
        chosen = {**self.params.weights.as_dict(), "half_life_days": self.params.half_life_days,
                  "mmr_lambda": self.params.mmr_lambda, "ease_lambda": self.params.ease_lambda}
        return {"reason": self.reason, "chosen": chosen, "validation_users": self.users,
                "validation_ndcg": round(self.ndcg, 4), "default_ndcg": round(self.default_ndcg, 4),
                "settings_tried": len(self.tried)}


def as_of(histories: Mapping[str, Sequence[History]], now: datetime) -> dict[str, list[History]]:
    """Histories without the shows first started after `now` (a run never learns from its future)."""
    return {u: [h for h in hs if h.started_at is None or h.started_at <= now] for u, hs in histories.items()}


def hold_out(histories: Mapping[str, Sequence[History]], hide: int,
             min_shows: int = MIN_SHOWS) -> tuple[dict[str, list[History]], dict[str, set[str]]]:
    """(histories without each user's `hide` most recently started watched shows, the hidden shows per user),
    for users with at least `min_shows` watched shows left; other users keep their whole history."""
    train: dict[str, list[History]] = {}
    hidden: dict[str, set[str]] = {}
    for user, history in histories.items():
        watched = sorted((h for h in history if h.watched.episodes_watched > 0),
                         key=lambda h: (h.started_at or h.watched.last_watched_at or EPOCH, h.show))
        if len(watched) < min_shows + hide:
            train[user] = list(history)
            continue
        latest = {h.show for h in watched[-hide:]}
        hidden[user] = latest
        train[user] = [h for h in history if h.show not in latest]
    return train, hidden


def default_params(params: Params, users_with_history: int) -> Params:
    """The default blend for a server of this many users (small servers lean on content and popularity)."""
    return replace(params, weights=SMALL_SERVER_WEIGHTS if users_with_history <= SMALL_SERVER_USERS else WEIGHTS)


class Neighbours:
    """The NEIGHBOURS nearest shows to each anchor show (catalog rows), searched once per anchor per run: users
    share most of their anchors, so the whole server needs as many searches as shows anyone watched, not one
    per user and watched show. The search is exact, in the catalog's float32 matrix, in batches (the
    similarities held are BATCH x catalog): at 20,000 shows of 1,536 dimensions it was ten times faster than
    pgvector's HNSW index, for every show anyone watched."""

    BATCH = 128

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.known: dict[int, np.ndarray] = {}

    def prepare(self, rows: Iterable[int]) -> None:
        """Search for every anchor in `rows` not searched yet, in one go."""
        missing = sorted(set(rows) - self.known.keys())
        if missing:
            found = self.search(missing)
            self.known.update({r: found.get(r, NONE) for r in missing})

    def of(self, rows: Sequence[int]) -> set[str]:
        """The shows near any of `rows`."""
        self.prepare(rows)
        shows = self.catalog.shows
        return {shows[i] for r in rows for i in self.known.get(r, ())}

    def search(self, rows: list[int]) -> dict[int, np.ndarray]:
        vectors = self.catalog.vectors
        n = min(NEIGHBOURS, len(vectors))
        out = {}
        for start in range(0, len(rows), self.BATCH):
            batch = rows[start:start + self.BATCH]
            sims = vectors[batch] @ vectors.T  # batch x catalog: each anchor's row contiguous for the partition
            top = np.argpartition(sims, len(vectors) - n, axis=1)[:, len(vectors) - n:].astype(np.int32)
            out.update({r: top[j] for j, r in enumerate(batch)})
        return out


def local_pool(catalog: Catalog, history: Sequence[History], taste_shows: Sequence[str],
               signal: UserSignal, neighbours: Neighbours | None = None) -> set[str]:
    """The asset's candidate pool: the nearest shows to each watched show, plus `usual_candidates`. Pass one
    `neighbours` for every user of a run."""
    anchors = [catalog.index[s] for s in taste_shows if s in catalog.index]
    pool = usual_candidates(catalog, signal, started(history))
    if anchors:
        pool |= (neighbours or Neighbours(catalog)).of(anchors)
    return pool


def started(history: Sequence[History]) -> set[str]:
    """The shows a user can't be offered (started, caught up or completed)."""
    return {h.show for h in history if h.state in EXCLUDED_STATES}


def usual_candidates(catalog: Catalog, signal: UserSignal, seen: set[str]) -> set[str]:
    """The user's best collaborative scores and the server's most popular shows, among shows not `seen` (on a
    small server the user's own shows are much of what is popular and would crowd the others out)."""
    items = list(signal.index)
    top = np.argsort(-signal.row, kind="stable")[: COLLABORATIVE_POOL + len(seen)]  # enough after removing seen
    best = [items[i] for i in top if signal.row[i] > 0 and items[i] not in seen]
    top = catalog.popular_order()[: POPULAR_POOL + len(seen)]
    popular = [catalog.shows[i] for i in top if catalog.shows[i] not in seen]
    return set(best[:COLLABORATIVE_POOL]) | set(popular[:POPULAR_POOL])


def split_view(catalog: Catalog, train: Mapping[str, Sequence[History]]) -> Catalog:
    """The catalog with popularity counted on the training histories only."""
    view = replace(catalog)
    view.count_watchers(train)
    return view


def tastes_of(histories: Mapping[str, Sequence[History]], now: datetime, params: Params,
              disliked: Mapping[str, frozenset[str]]) -> dict[str, dict[str, float]]:
    """Every user's taste weights."""
    return {u: taste(h, now, params, disliked.get(u, frozenset())) for u, h in histories.items()}


def spread(users: Sequence[str], n: int) -> list[str]:
    """At most `n` of the sorted users, evenly spread (deterministic)."""
    ordered = sorted(users)
    if len(ordered) <= n:
        return ordered
    return [ordered[int(i * len(ordered) / n)] for i in range(n)]


def ndcgs(scored: Mapping[str, Scored], catalog: Catalog, hidden: Mapping[str, set[str]],
          params: Params) -> np.ndarray:
    """nDCG@count of each user in `scored`, ranking each under `params`."""
    out = []
    for user, s in scored.items():
        out.append(ranking_metrics(ranked_shows(catalog, s, params), hidden[user], params.count)["ndcg"])
    return np.array(out)


class Split:
    """The time split's validation users, and their candidates and scores, cached across the settings tried
    (a setting changes only the blend, the half-life or EASE's regularisation)."""

    def __init__(self, catalog: Catalog, train: Mapping[str, Sequence[History]], hidden: Mapping[str, set[str]],
                 now: datetime, params: Params, disliked: Mapping[str, frozenset[str]], neighbours: Neighbours) -> None:
        self.view = split_view(catalog, train)
        self.train, self.hidden, self.now, self.disliked, self.neighbours = train, hidden, now, disliked, neighbours
        self.users = spread([u for u in hidden if any(s in self.view.index for s in hidden[u])], MAX_USERS)
        self.tastes = tastes_of(train, now, params, disliked)  # which shows, not how much: the matrix is binary
        self.models: dict[float, ItemScores] = {}
        self.pools: dict[str, set[str]] = {}
        self.scored: dict[float, dict[str, Scored]] = {}
        self.swapped: dict[tuple[float, float], dict[str, Scored]] = {}

    def ndcgs(self, p: Params) -> np.ndarray:
        """The validation users' nDCG under `p`."""
        view, train, now = self.view, self.train, self.now
        if p.ease_lambda not in self.models:
            self.models[p.ease_lambda] = ease(self.tastes, p.ease_lambda)
        model = self.models[p.ease_lambda]
        if not self.pools:  # one pool per user, from the first model, so every setting ranks the same candidates
            self.neighbours.prepare(view.index[s] for u in self.users for s in self.tastes[u] if s in view.index)
            self.pools.update({u: local_pool(view, train[u], list(self.tastes[u]), model.signal(u), self.neighbours)
                               for u in self.users})
        if p.half_life_days not in self.scored:  # the half-life moves content; the collaborative part is swapped
            # one user's similarities at a time, each user scored once and re-weighted for every half-life
            half_lives = {p.half_life_days, *GRID["half_life_days"]} - self.scored.keys()
            for u in self.users:
                rules = Rules(disliked=self.disliked.get(u, frozenset()))
                full = score(view, train[u], model.signal(u), now, p, self.pools[u], rules)
                for half_life in half_lives:
                    self.scored.setdefault(half_life, {})[u] = retaste(
                        full, view, train[u], now, replace(p, half_life_days=half_life), rules).slim()
        if (p.half_life_days, p.ease_lambda) not in self.swapped:
            self.swapped[p.half_life_days, p.ease_lambda] = {
                u: with_collaborative(s, view, model.signal(u)) for u, s in self.scored[p.half_life_days].items()}
        return ndcgs(self.swapped[p.half_life_days, p.ease_lambda], view, self.hidden, p)


def tune(catalog: Catalog, histories: Mapping[str, Sequence[History]], now: datetime, params: Params,
         disliked: Mapping[str, frozenset[str]] | None = None, neighbours: Neighbours | None = None) -> Tuning:
    """Choose this server's settings from its own history as of `now` (see the module's docstring).
    `neighbours`: the run's neighbour searches over the same catalog rows, to share with the recommendations."""
    disliked = disliked or {}
    visible = as_of(histories, now)
    users_with_history = sum(1 for t in tastes_of(visible, now, params, disliked).values() if t)
    defaults = default_params(params, users_with_history)
    train, hidden = hold_out(visible, HIDE)
    if len(hidden) < MIN_USERS:
        return Tuning(defaults, defaults, f"defaults: {len(hidden)} users with enough history, "
                                          f"tuning needs {MIN_USERS}")
    split = Split(catalog, train, hidden, now, params, disliked, neighbours or Neighbours(catalog))
    if len(split.users) < MIN_USERS:
        return Tuning(defaults, defaults, f"defaults: {len(split.users)} users with a hidden show in the catalog")
    tried: dict[tuple, np.ndarray] = {}

    def key(p: Params) -> tuple:
        return (*p.weights.as_dict().values(), p.mmr_lambda, p.half_life_days, p.ease_lambda)

    def value(p: Params) -> np.ndarray:
        if key(p) not in tried:
            tried[key(p)] = split.ndcgs(p)
        return tried[key(p)]

    best = defaults
    for preset in PRESETS:
        candidate = replace(defaults, **preset)
        if better(value(candidate), value(best)):
            best = candidate
    for _ in range(PASSES):
        moved = False
        for name, values in GRID.items():
            for v in values:
                candidate = with_setting(best, name, v)
                if better(value(candidate), value(best)):
                    best, moved = candidate, True
        if not moved:
            break
    return Tuning(best, defaults, "tuned", len(split.users), float(value(best).mean()), float(value(defaults).mean()),
                  [{"setting": list(k), "ndcg": round(float(v.mean()), 4)} for k, v in tried.items()])


def better(candidate: np.ndarray, best: np.ndarray) -> bool:
    """Whether the validation users' nDCGs beat the best's by more than noise: the mean gain must exceed `MARGIN`
    and `NOISE` standard errors of the paired gains."""
    gain = candidate - best
    return bool(gain.mean() > max(MARGIN, NOISE * gain.std(ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else np.inf))


def with_collaborative(scored: Scored, catalog: Catalog, signal: UserSignal) -> Scored:
    """`scored` with its collaborative component from another model."""
    if scored.cold_start:
        return scored
    shows = [catalog.shows[i] for i in scored.candidates]
    return replace(scored, components={**scored.components, "collaborative": signal.for_shows(shows)})


def with_setting(p: Params, name: str, value: float) -> Params:
    """`p` with one grid setting changed."""
    if name in ("mmr_lambda", "half_life_days", "ease_lambda"):
        return replace(p, **{name: value})
    return replace(p, weights=replace(p.weights, **{name: value}))
