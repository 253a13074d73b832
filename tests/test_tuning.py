"""Per-server tuning on hand-made servers: the time split, the clock, the fallback to defaults, and that the
search finds the blend a server's history rewards."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from aperture_assets.logic.evaluation import METHODS, evaluate
from aperture_assets.logic.recommend import Catalog, History, Params
from aperture_assets.logic.scoring import SMALL_SERVER_WEIGHTS, WEIGHTS, Watched
from aperture_assets.logic.tuning import MIN_USERS, NEIGHBOURS, Neighbours, as_of, better, hold_out, tune

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def started(show: str, days_ago: float, state: str = "completed") -> History:
    when = NOW - timedelta(days=days_ago)
    return History(show, state, Watched(show, 10, 10, 1, False, when), when)


def group_server(users_per_group: int, seed: int = 0) -> tuple[Catalog, dict[str, list[History]]]:
    """Four groups of users who each work through their group's own shows in a shared order (so what the
    group watched next is the best guess), over a catalog whose vectors say nothing about the groups."""
    rng = np.random.default_rng(seed)
    shows = [f"g{g}s{i:02d}" for g in range(4) for i in range(12)] + [f"other{i:02d}" for i in range(40)]
    vectors = rng.normal(size=(len(shows), 16))
    catalog = Catalog(shows=shows, series_ids=[f"id-{s}" for s in shows], names=shows,
                      ratings=[7.0] * len(shows), genres=[[] for _ in shows],
                      vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    histories = {}
    for g in range(4):
        for u in range(users_per_group):
            n = int(rng.integers(6, 11))
            order = [f"g{g}s{i:02d}" for i in range(12)]
            histories[f"user-{g}-{u}"] = [started(s, 300 - 10 * i - u) for i, s in enumerate(order[:n])]
    catalog.count_watchers(histories)
    return catalog, histories


def test_hold_out_hides_each_users_most_recently_started_shows():
    histories = {"a": [started("x", 30), started("y", 20), started("z", 10), started("w", 40), started("v", 50)],
                 "short": [started("x", 5), started("y", 4)]}
    train, hidden = hold_out(histories, hide=2, min_shows=3)
    assert hidden == {"a": {"z", "y"}}
    assert {h.show for h in train["a"]} == {"x", "w", "v"}
    assert train["short"] == histories["short"]  # too little history to hide anything


def test_tuning_never_sees_shows_started_after_the_clock():
    catalog, histories = group_server(4)
    later = {u: [*h, replace(started(f"other{i:02d}", 0), started_at=NOW + timedelta(days=3))]
             for i, (u, h) in enumerate(histories.items())}
    assert as_of(later, NOW) == histories
    first, second = tune(catalog, histories, NOW, Params()), tune(catalog, later, NOW, Params())
    assert first.as_dict() == second.as_dict()
    assert first.tried == second.tried


def test_few_users_keep_the_small_server_defaults():
    catalog, histories = group_server(1)
    three = dict(list(histories.items())[:3])
    result = tune(catalog, three, NOW, Params())
    assert result.reason.startswith("defaults") and str(MIN_USERS) in result.reason
    assert result.params.weights == SMALL_SERVER_WEIGHTS and result.tried == []
    catalog, histories = group_server(3)
    assert tune(catalog, histories, NOW, Params()).defaults.weights == WEIGHTS


def test_tuning_finds_the_blend_this_server_rewards():
    catalog, histories = group_server(5)
    result = tune(catalog, histories, NOW, Params(count=5))
    assert result.reason == "tuned" and result.users == 20
    assert result.ndcg > result.default_ndcg + 0.05  # content here is noise; leaning on co-watching pays
    chosen = result.params.weights
    assert chosen.content * WEIGHTS.collaborative < chosen.collaborative * WEIGHTS.content
    assert any(t["ndcg"] == round(result.ndcg, 4) for t in result.tried)
    co_watching_alone = next(t["ndcg"] for t in result.tried if t["setting"][:4] == [0.0, 1.0, 0.0, 0.0])
    assert round(result.ndcg, 4) >= co_watching_alone  # the presets put EASE alone within reach


def test_a_change_must_beat_the_best_by_more_than_noise():
    best = np.zeros(40)
    lucky = best.copy()
    lucky[0] = 1.0  # one more hit among 40 users: a mean gain of 0.025, but within noise
    assert not better(lucky, best)
    steady = best + 0.02  # a small gain on every user
    assert better(steady, best)
    assert not better(best + 0.001, best)  # below MARGIN however steady


def test_evaluation_reports_every_method_with_tuning_on_the_training_part_only():
    catalog, histories = group_server(5, seed=1)
    report, users, tuning = evaluate(catalog, histories, NOW, 5)
    assert users == 20 and set(report) == set(METHODS)
    assert report["aperture"]["ndcg"] >= report["popular"]["ndcg"]
    assert report["ease"]["hit_rate"] > report["content_only"]["hit_rate"]  # content is noise here
    assert tuning.users == 20  # tuned on the histories without the evaluation's hidden shows


def test_neighbours_are_each_anchors_exact_nearest_searched_once_per_run():
    rng = np.random.default_rng(3)
    shows = [f"s{i:03d}" for i in range(3 * NEIGHBOURS)]
    vectors = rng.normal(size=(len(shows), 8)).astype(np.float32)
    catalog = Catalog(shows, shows, shows, [None] * len(shows), [[] for _ in shows],
                      vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    calls: list[list[int]] = []

    class Counted(Neighbours):
        def search(self, rows: list[int]) -> dict:
            calls.append(rows)
            return super().search(rows)

    neighbours = Counted(catalog)
    first, second = [0, 5, 17], [5, 17, 260]
    neighbours.prepare(first)
    got = neighbours.of(second)
    assert calls == [first, [260]]  # anchors already searched are not searched again
    sims = catalog.vectors[second] @ catalog.vectors.T
    expected = {catalog.shows[i] for row in sims for i in np.argsort(-row)[:NEIGHBOURS]}
    assert got == expected and len(expected) < len(shows)
