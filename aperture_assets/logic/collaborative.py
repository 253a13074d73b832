"""Item-based collaborative filtering, computed once per run over the user x show matrix (numpy only).

Two models, both strong simple references for implicit feedback:
- EASE (Steck, WWW 2019): B = I - P / diag(P) with P = (X^T X + lambda I)^-1, whose diagonal is zero by
  construction; a user's scores are x_u B. With far fewer users than shows, P comes from the Woodbury
  identity through a users x users inverse, so X P = K X and diag(P) = (1 - colsum(X * K X)) / lambda with
  K = (X X^T + lambda I)^-1, and no shows x shows matrix is ever formed.
- item-kNN: cosine similarity between show columns, every co-watched show a neighbour; with Xn = X
  scaled by 1 / sqrt(watchers) per column, S = Xn^T Xn and scores x_u S = (x_u Xn^T) Xn, again without a
  shows x shows matrix.

X is binary (the user has the show in their taste), rows are users and columns the shows anyone started.
Evidence asks only for the few (watched, pick) item-item weights it names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# Strong regularisation suits the small, sparse matrices of a home server (a show has a few dozen viewers at
# most); the tuning tries a weaker and a stronger value too.
EASE_LAMBDA = 100.0
EVIDENCE = 3


@dataclass
class ItemScores:
    """Every user's scores for every show anyone started (users x shows), and `link(rows, cols)`: the
    item-item weights [watched rows x candidate cols] behind them."""

    users: list[str]
    items: list[str]
    scores: np.ndarray
    x: np.ndarray
    link: Callable[[np.ndarray, np.ndarray], np.ndarray]
    user_index: dict[str, int] = field(init=False)
    item_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.users)}
        self.item_index = {s: i for i, s in enumerate(self.items)}

    def signal(self, user: str) -> UserSignal:
        """One user's scores by show and the watched shows behind any of them."""
        if user not in self.user_index:
            return UserSignal()
        u = self.user_index[user]
        watched = np.flatnonzero(self.x[u])

        def because(shows: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
            cols = np.array([self.item_index.get(s, -1) for s in shows])
            known = cols >= 0
            out: dict[str, list[tuple[str, float]]] = {s: [] for s in shows}
            if not known.any() or not len(watched):
                return out
            weights = self.link(watched, cols[known])  # watched x known picks
            for c, show in enumerate(np.asarray(shows, dtype=object)[known]):
                top = np.argsort(-weights[:, c], kind="stable")[:EVIDENCE]
                out[show] = [(self.items[watched[j]], float(weights[j, c])) for j in top if weights[j, c] > 0]
            return out

        return UserSignal(self.item_index, self.scores[u], because)


@dataclass(frozen=True)
class UserSignal:
    """One user's collaborative scores (aligned with `index`) and `because(shows)`: per show, the user's
    watched shows that contributed most, with their contribution."""

    index: Mapping[str, int] = field(default_factory=dict)
    row: np.ndarray = field(default_factory=lambda: np.zeros(0))
    because: Callable[[Sequence[str]], dict[str, list[tuple[str, float]]]] = lambda shows: {s: [] for s in shows}

    @classmethod
    def of(cls, scores: Mapping[str, float]) -> UserSignal:
        """A signal from plain show -> score (no evidence)."""
        return cls({s: i for i, s in enumerate(scores)}, np.array(list(scores.values()), dtype=float))

    def for_shows(self, shows: Sequence[str]) -> np.ndarray:
        """Scores of `shows`, clipped at zero and scaled so this user's best is 1 (zeros when none)."""
        values = np.array([self.row[self.index[s]] if s in self.index else 0.0 for s in shows], dtype=float)
        values = np.clip(values, 0.0, None)
        peak = values.max() if len(values) else 0.0
        return values / peak if peak > 0 else values


def interactions(tastes: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[str], np.ndarray]:
    """(users, shows anyone has in their taste, binary users x shows matrix), both sorted."""
    users = sorted(u for u, t in tastes.items() if t)
    items = sorted({s for u in users for s in tastes[u]})
    col = {s: i for i, s in enumerate(items)}
    x = np.zeros((len(users), len(items)))
    for r, u in enumerate(users):
        x[r, [col[s] for s in tastes[u]]] = 1.0
    return users, items, x


def ease(tastes: Mapping[str, Mapping[str, float]], lam: float = EASE_LAMBDA) -> ItemScores:
    """EASE scores for every user, through whichever of the two equal forms inverts the smaller matrix."""
    users, items, x = interactions(tastes)
    if len(items) <= len(users):
        p = np.linalg.inv(x.T @ x + lam * np.eye(len(items)))
        xp, diag = x @ p, np.diag(p).copy()

        def p_block(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            return p[np.ix_(rows, cols)]
    else:
        k = np.linalg.inv(x @ x.T + lam * np.eye(len(users)))
        xp = k @ x
        diag = (1.0 - (x * xp).sum(axis=0)) / lam

        def p_block(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            same = (rows[:, None] == cols[None, :]).astype(float)
            return (same - x[:, rows].T @ xp[:, cols]) / lam
    scores = x - xp / diag

    def link(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        b = -p_block(rows, cols) / diag[cols]
        return np.where(rows[:, None] == cols[None, :], 0.0, b)

    return ItemScores(users, items, scores, x, link)


def item_knn(tastes: Mapping[str, Mapping[str, float]]) -> ItemScores:
    """Cosine item-kNN scores for every user (a show is never its own neighbour)."""
    users, items, x = interactions(tastes)
    xn = x / np.sqrt(np.maximum(x.sum(axis=0), 1.0))
    scores = (x @ xn.T) @ xn - x  # x_u S with S = xn^T xn, minus the diagonal's share (S_ii = 1)

    def link(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        sims = xn[:, rows].T @ xn[:, cols]
        return np.where(rows[:, None] == cols[None, :], 0.0, sims)

    return ItemScores(users, items, scores, x, link)
