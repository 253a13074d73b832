"""Recommendation maths on small hand-made vectors."""

from datetime import UTC, datetime, timedelta

import numpy as np

from aperture_assets.logic.scoring import (
    Watched,
    content_scores,
    mmr,
    popularity_prior,
    taste_weight,
)

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def unit(*values):
    v = np.array(values, dtype=float)
    return v / np.linalg.norm(v)


def test_taste_weight_rewards_completion_favourites_rewatches_and_recency():
    base = Watched("a", 10, 10, 1, False, NOW)
    assert taste_weight(base, NOW) > taste_weight(Watched("a", 2, 10, 1, False, NOW), NOW)
    assert taste_weight(Watched("a", 10, 10, 1, True, NOW), NOW) > taste_weight(base, NOW)
    assert taste_weight(Watched("a", 10, 10, 3, False, NOW), NOW) > taste_weight(base, NOW)
    old = Watched("a", 10, 10, 1, False, NOW - timedelta(days=180))
    assert abs(taste_weight(old, NOW) - taste_weight(base, NOW) / 2) < 1e-9
    ancient = Watched("a", 10, 10, 1, False, NOW - timedelta(days=3650))
    assert taste_weight(ancient, NOW) == taste_weight(base, NOW) * 0.25
    assert taste_weight(Watched("fav-only", 0, 10, 0, True, None), NOW) > 0


def test_two_tastes_both_pull_their_neighbours_up():
    crime, nature = unit(1, 0, 0), unit(0, 1, 0)
    watched = np.stack([crime, nature])
    candidates = np.stack([unit(0.9, 0.1, 0), unit(0.1, 0.9, 0), unit(0.7, 0.7, 0.1), unit(0, 0, 1)])
    scores, _ = content_scores(candidates, watched, np.array([1.0, 1.0]), k=1)
    assert scores[0] > scores[3] and scores[1] > scores[3]
    # an averaged taste vector would rank the blurred middle candidate first; top-k does not
    assert scores[0] > scores[2] and scores[1] > scores[2]


def test_popularity_prior_is_log_scaled_to_the_most_watched():
    prior = popularity_prior(np.array([0.0, 1.0, 3.0, 15.0]))
    assert prior[0] == 0.0 and prior[-1] == 1.0
    assert np.all(np.diff(prior) > 0)
    assert prior[2] > 3 / 15  # one watcher more matters more at the bottom than at the top
    assert popularity_prior(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_mmr_trades_a_near_duplicate_for_variety():
    vectors = np.stack([unit(1, 0), unit(0.99, 0.01), unit(0, 1)])
    order, overlap = mmr(np.array([1.0, 0.99, 0.8]), vectors, 2, lam=0.5)
    assert order == [0, 2]
    assert overlap[0] == 0.0 and abs(overlap[1]) < 1e-9  # the second pick is orthogonal to the first
    order, overlap = mmr(np.array([1.0, 0.99, 0.8]), vectors, 2, lam=1.0)
    assert order == [0, 1] and overlap[1] > 0.99  # pure relevance keeps the near-duplicate, and says so
