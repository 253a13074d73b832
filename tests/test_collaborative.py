"""EASE and item-kNN against their textbook definitions (an explicit shows x shows matrix), on random
user x show matrices of both shapes, plus the evidence they give and the per-user signal."""

import tracemalloc

import numpy as np
import pytest

from aperture_assets.logic.collaborative import UserSignal, ease, interactions, item_knn


def random_tastes(users: int, shows: int, seed: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    out = {}
    for u in range(users):
        picked = rng.choice(shows, size=rng.integers(1, max(2, shows // 2)), replace=False)
        out[f"u{u:02d}"] = {f"s{s:03d}": float(rng.uniform(0.5, 3.0)) for s in picked}
    return out


def dense(tastes: dict[str, dict[str, float]]) -> np.ndarray:
    """The binary users x shows matrix, rows and columns sorted (as the models order them)."""
    users = sorted(u for u, t in tastes.items() if t)
    items = sorted({s for u in users for s in tastes[u]})
    return np.array([[float(s in tastes[u]) for s in items] for u in users])


def all_scores(model) -> np.ndarray:
    return np.array([model.signal(u).row for u in model.users])


def textbook_ease(x: np.ndarray, lam: float) -> np.ndarray:
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    return b


@pytest.mark.parametrize(("users", "shows"), [(6, 40), (40, 12), (25, 25)])
@pytest.mark.parametrize("lam", [1.0, 100.0])
def test_ease_matches_the_closed_form_whichever_matrix_it_inverts(users, shows, lam):
    tastes = random_tastes(users, shows, seed=users * shows)
    model = ease(tastes, lam)
    x = dense(tastes)
    b = textbook_ease(x, lam)
    assert np.allclose(np.diag(b), 0.0, atol=1e-9)  # no show recommends itself
    assert np.allclose(all_scores(model), x @ b, atol=1e-8)
    rows, cols = np.array([0, 3, 5]), np.array([1, 3, 7, 9])
    assert np.allclose(model.link(rows, cols), b[np.ix_(rows, cols)], atol=1e-8)


@pytest.mark.parametrize(("users", "shows"), [(6, 40), (40, 12)])
def test_item_knn_is_cosine_between_show_columns_without_the_show_itself(users, shows):
    tastes = random_tastes(users, shows, seed=7 + users)
    model = item_knn(tastes)
    x = dense(tastes)
    norms = np.linalg.norm(x, axis=0)
    sims = (x.T @ x) / np.outer(norms, norms)
    np.fill_diagonal(sims, 0.0)
    assert np.allclose(all_scores(model), x @ sims)
    rows, cols = np.array([0, 2]), np.array([2, 4])
    assert np.allclose(model.link(rows, cols), sims[np.ix_(rows, cols)])


def test_evidence_names_the_watched_shows_that_contributed_most():
    tastes = random_tastes(30, 20, seed=3)
    model = ease(tastes, 5.0)
    user = "u04"
    items, x = model.items, dense(tastes)
    b = textbook_ease(x, 5.0)
    u = model.user_index[user]
    scores = model.signal(user).row
    unseen = [i for i in range(len(items)) if not x[u, i]]
    target = max(unseen, key=lambda i: scores[i])
    contributions = {items[j]: b[j, target] for j in np.flatnonzero(x[u])}
    expected = sorted((s for s, c in contributions.items() if c > 0), key=lambda s: -contributions[s])[:3]
    because = model.signal(user).because([items[target], "never-started"])
    assert [show for show, _ in because[items[target]]] == expected
    assert all(abs(w - contributions[s]) < 1e-9 for s, w in because[items[target]])
    assert because["never-started"] == []


def test_user_signal_scales_each_user_to_their_best_and_ignores_unknown_shows():
    signal = UserSignal.of({"a": 2.0, "b": -1.0, "c": 0.5})
    assert signal.for_shows(["a", "b", "c", "zz"]).tolist() == [1.0, 0.0, 0.25, 0.0]
    assert UserSignal().for_shows(["a"]).tolist() == [0.0]
    model = ease({"solo": {"x": 1.0}}, 10.0)
    assert model.signal("nobody").for_shows(["x"]).tolist() == [0.0]
    assert model.signal("solo").because(["x"]) == {"x": []}  # a show is no evidence for itself


def test_ease_scores_what_the_twins_of_a_user_watched_above_what_strangers_did():
    tastes = {"me": {"a": 1, "b": 1}, "twin1": {"a": 1, "b": 1, "c": 1}, "twin2": {"a": 1, "b": 1, "c": 1},
              "stranger": {"x": 1, "d": 1}, "other": {"x": 1, "d": 1, "e": 1}}
    for model in (ease(tastes, 1.0), item_knn(tastes)):
        row = dict(zip(model.items, model.signal("me").row, strict=True))
        assert row["c"] > 0 and row["c"] > row["d"] and row["c"] > row["e"]


def test_fitting_and_scoring_never_hold_a_users_x_shows_matrix():
    """At 400 users x some 13,000 shows one dense float64 users x shows matrix is 42 MB; fitting either model and
    scoring every user stays well under that (the models keep X sparse and score a user when asked)."""
    rng = np.random.default_rng(5)
    tastes = {f"u{u:03d}": {f"s{s:05d}": 1.0 for s in rng.choice(20_000, size=40, replace=False)}
              for u in range(400)}
    x = interactions(tastes)
    assert (len(x.users), x.indptr[-1]) == (400, sum(len(t) for t in tastes.values()))
    dense_bytes = len(x.users) * len(x.items) * 8
    for fit in (ease, item_knn):
        tracemalloc.start()
        model = fit(tastes)
        for user in model.users:
            model.signal(user).because(["s00001", "s00002"])
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < dense_bytes / 2, (fit.__name__, peak, dense_bytes)
