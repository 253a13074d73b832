"""Item-based collaborative filtering, fitted once per run over the user x show matrix (numpy only).

Two models, both strong simple references for implicit feedback:
- EASE (Steck, WWW 2019): B = I - P / diag(P) with P = (X^T X + lambda I)^-1, whose diagonal is zero by
  construction; a user's scores are x_u B. With fewer users than shows, P comes from the Woodbury identity
  through a users x users inverse, so X P = K X and diag(P) = (1 - colsum(X * K X)) / lambda with
  K = (X X^T + lambda I)^-1. Either way the model keeps one min(users, shows)^2 matrix.
- item-kNN: cosine similarity between show columns, every co-watched show a neighbour; with Xn = X
  scaled by 1 / sqrt(watchers) per column, S = Xn^T Xn and scores x_u S = (x_u Xn^T) Xn.

X is binary (the user has the show in their taste), rows are users and columns the shows anyone started; it is
kept sparse (each user's columns), and a user's scores are computed when asked for (`signal`), so memory does
not grow with users x shows: at 500 users and 20,000 shows a dense scores matrix alone was 80 MB per model.
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
CHUNK = 2**19  # entries of X made dense at a time while fitting (4 MB in float64)


@dataclass
class Interactions:
    """The binary users x shows matrix, sparse: user r's show columns are indices[indptr[r]:indptr[r + 1]]."""

    users: list[str]
    items: list[str]
    indptr: np.ndarray
    indices: np.ndarray
    owner: np.ndarray = field(init=False)  # the user (row) of each stored entry
    watchers: np.ndarray = field(init=False)  # users per show
    by_item: np.ndarray = field(init=False)  # the users of show c are by_item[item_ptr[c]:item_ptr[c + 1]]
    item_ptr: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.owner = np.repeat(np.arange(len(self.users)), np.diff(self.indptr))
        counts = np.bincount(self.indices, minlength=len(self.items))
        self.watchers = counts.astype(float)
        self.by_item = self.owner[np.argsort(self.indices, kind="stable")]
        self.item_ptr = np.concatenate([[0], np.cumsum(counts)])

    def row(self, r: int) -> np.ndarray:
        return self.indices[self.indptr[r]:self.indptr[r + 1]]

    def columns(self, cols: np.ndarray) -> np.ndarray:
        """X[:, cols] as a dense users x len(cols) matrix (a repeated column is filled each time)."""
        out = np.zeros((len(self.users), len(cols)))
        for j, c in enumerate(cols):
            out[self.by_item[self.item_ptr[c]:self.item_ptr[c + 1]], j] = 1.0
        return out

    def dense_columns(self, start: int, stop: int) -> np.ndarray:
        """X[:, start:stop], dense."""
        out = np.zeros((len(self.users), stop - start))
        keep = (self.indices >= start) & (self.indices < stop)
        out[self.owner[keep], self.indices[keep] - start] = 1.0
        return out

    def dense_rows(self, start: int, stop: int) -> np.ndarray:
        """X[start:stop, :], dense."""
        out = np.zeros((stop - start, len(self.items)))
        a, b = self.indptr[start], self.indptr[stop]
        out[self.owner[a:b] - start, self.indices[a:b]] = 1.0
        return out


@dataclass
class ItemScores:
    """A fitted model: `score(r)` is user r's scores for every show anyone started, and `link(rows, cols)` the
    item-item weights [watched rows x candidate cols] behind them."""

    x: Interactions
    score: Callable[[int], np.ndarray]
    link: Callable[[np.ndarray, np.ndarray], np.ndarray]
    user_index: dict[str, int] = field(init=False)
    item_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.x.users)}
        self.item_index = {s: i for i, s in enumerate(self.x.items)}

    @property
    def users(self) -> list[str]:
        return self.x.users

    @property
    def items(self) -> list[str]:
        return self.x.items

    def signal(self, user: str) -> UserSignal:
        """One user's scores by show and the watched shows behind any of them."""
        if user not in self.user_index:
            return UserSignal()
        u = self.user_index[user]
        watched = self.x.row(u)

        def because(shows: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
            cols = np.array([self.item_index.get(s, -1) for s in shows], dtype=int)
            known = cols >= 0
            out: dict[str, list[tuple[str, float]]] = {s: [] for s in shows}
            if not known.any() or not len(watched):
                return out
            weights = self.link(watched, cols[known])  # watched x known picks
            for c, show in enumerate(np.asarray(shows, dtype=object)[known]):
                top = np.argsort(-weights[:, c], kind="stable")[:EVIDENCE]
                out[show] = [(self.items[watched[j]], float(weights[j, c])) for j in top if weights[j, c] > 0]
            return out

        return UserSignal(self.item_index, self.score(u), because)


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


def interactions(tastes: Mapping[str, Mapping[str, float]]) -> Interactions:
    """The users with any taste, the shows anyone has in their taste (both sorted) and who has which."""
    users = sorted(u for u, t in tastes.items() if t)
    items = sorted({s for u in users for s in tastes[u]})
    col = {s: i for i, s in enumerate(items)}
    rows = [sorted(col[s] for s in tastes[u]) for u in users]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows], dtype=np.intp)])
    indices = np.fromiter((c for r in rows for c in r), dtype=np.intp, count=int(indptr[-1]))
    return Interactions(users, items, indptr, indices)


def ease(tastes: Mapping[str, Mapping[str, float]], lam: float = EASE_LAMBDA) -> ItemScores:
    """EASE, through whichever of the two equal forms inverts the smaller matrix."""
    x = interactions(tastes)
    n_users, n_items = len(x.users), len(x.items)
    if n_items <= n_users:
        gram = np.zeros((n_items, n_items))
        step = max(1, CHUNK // max(n_items, 1))
        for start in range(0, n_users, step):
            d = x.dense_rows(start, min(start + step, n_users))
            gram += d.T @ d
        p = np.linalg.inv(gram + lam * np.eye(n_items))
        diag = np.diag(p).copy()

        def score(r: int) -> np.ndarray:
            cols = x.row(r)
            row = -p[cols].sum(axis=0) / diag
            row[cols] += 1.0
            return row

        def p_block(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            return p[np.ix_(rows, cols)]
    else:
        step = max(1, CHUNK // n_users)
        gram = np.zeros((n_users, n_users))
        for start in range(0, n_items, step):
            d = x.dense_columns(start, min(start + step, n_items))
            gram += d @ d.T
        k = np.linalg.inv(gram + lam * np.eye(n_users))
        diag = np.empty(n_items)
        for start in range(0, n_items, step):
            d = x.dense_columns(start, min(start + step, n_items))
            diag[start:start + d.shape[1]] = (1.0 - (d * (k @ d)).sum(axis=0)) / lam

        def score(r: int) -> np.ndarray:
            row = -np.bincount(x.indices, weights=k[r, x.owner], minlength=n_items) / diag  # -(K X)_r / diag
            row[x.row(r)] += 1.0
            return row

        def p_block(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            same = (rows[:, None] == cols[None, :]).astype(float)
            return (same - x.columns(rows).T @ (k @ x.columns(cols))) / lam

    def link(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        b = -p_block(rows, cols) / diag[cols]
        return np.where(rows[:, None] == cols[None, :], 0.0, b)

    return ItemScores(x, score, link)


def item_knn(tastes: Mapping[str, Mapping[str, float]]) -> ItemScores:
    """Cosine item-kNN (a show is never its own neighbour)."""
    x = interactions(tastes)
    w = 1.0 / np.sqrt(np.maximum(x.watchers, 1.0))
    entry_w = w[x.indices]

    def score(r: int) -> np.ndarray:
        mine = np.zeros(len(x.items), dtype=bool)
        mine[x.row(r)] = True
        near = np.bincount(x.owner, weights=np.where(mine[x.indices], entry_w, 0.0), minlength=len(x.users))
        row = w * np.bincount(x.indices, weights=near[x.owner], minlength=len(x.items))  # x_u Xn^T Xn
        row[mine] -= 1.0  # a show's similarity to itself
        return row

    def link(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        sims = (x.columns(rows).T @ x.columns(cols)) * w[rows][:, None] * w[cols][None, :]
        return np.where(rows[:, None] == cols[None, :], 0.0, sims)

    return ItemScores(x, score, link)
