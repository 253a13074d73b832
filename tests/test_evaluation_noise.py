"""The per-user evaluation and the bootstrap interval the recommendation benchmark reports its ratios with."""

import numpy as np
import pytest

from aperture_assets.logic.evaluation import METHODS, METRICS, bootstrap_ratio, evaluate, evaluate_users
from tests.test_tuning import NOW, group_server


def test_evaluate_is_the_mean_of_the_per_user_scores():
    catalog, histories = group_server(5, seed=1)
    report, users, tuning = evaluate(catalog, histories, NOW, 5)
    per_user, per_user_tuning = evaluate_users(catalog, histories, NOW, 5)
    assert list(per_user) == sorted(per_user) and len(per_user) == users == 20
    assert per_user_tuning.as_dict() == tuning.as_dict()
    for method in METHODS:
        for metric in METRICS:
            values = [scores[method][metric] for scores in per_user.values()]
            assert all(0.0 <= v <= 1.0 for v in values)
            assert report[method][metric] == pytest.approx(sum(values) / users, abs=1e-12)
    assert {scores["ease"]["hit_rate"] for scores in per_user.values()} == {0.0, 1.0}  # one hidden show: hit or not


def test_the_ratio_is_of_the_means_and_its_interval_surrounds_it():
    rng = np.random.default_rng(5)
    ours = rng.uniform(0, 1, 60) * (rng.random(60) < 0.3)  # mostly misses, like nDCG with one hidden show
    theirs = rng.uniform(0, 1, 60) * (rng.random(60) < 0.2)
    ratio, low, high = bootstrap_ratio(ours, theirs, 1000, seed=1)
    assert ratio == pytest.approx(ours.mean() / theirs.mean())
    assert low < ratio < high
    assert high / low > 1.5  # 60 users of sparse hits: a wide interval
    assert bootstrap_ratio(ours, theirs, 1000, seed=1) == (ratio, low, high)  # fixed RNG seed: reproducible
    assert bootstrap_ratio(ours, theirs, 1000, seed=2) != (ratio, low, high)


def test_more_users_narrow_the_interval():
    rng = np.random.default_rng(7)

    def width(users: int) -> float:
        ours = rng.uniform(0, 1, users) * (rng.random(users) < 0.3)
        theirs = rng.uniform(0, 1, users) * (rng.random(users) < 0.2)
        _, low, high = bootstrap_ratio(ours, theirs, 1000, seed=0)
        return high - low

    assert width(2000) < width(50) / 3


def test_every_user_the_same_ratio_leaves_no_doubt():
    theirs = np.linspace(0.1, 1.0, 30)
    assert bootstrap_ratio(2 * theirs, theirs) == pytest.approx((2.0, 2.0, 2.0))


def test_the_best_baseline_is_picked_again_in_each_resample():
    rng = np.random.default_rng(11)
    ours = rng.uniform(0, 1, 80)
    first, second = rng.uniform(0, 1, 80), rng.uniform(0, 1, 80)  # close means: either may lead in a resample
    ratio, low, high = bootstrap_ratio(ours, [first, second], 1000, seed=3)
    assert ratio == pytest.approx(ours.mean() / max(first.mean(), second.mean()))
    alone = [bootstrap_ratio(ours, baseline, 1000, seed=3) for baseline in (first, second)]
    # each resample's best is at least either baseline: the bounds can only be lower than against either alone
    assert low <= min(a[1] for a in alone) and high <= min(a[2] for a in alone)
    pooled_best = alone[1] if second.mean() > first.mean() else alone[0]
    assert pooled_best[0] == ratio  # the point ratio is against the pooled best ...
    assert high < pooled_best[2] - 0.01  # ... but its interval is not simply that baseline's


def test_a_baseline_that_never_scores_gives_an_infinite_ratio_and_bad_input_is_refused():
    assert bootstrap_ratio([0.5, 0.0, 1.0], [0.0, 0.0, 0.0])[0] == np.inf
    with pytest.raises(ValueError):
        bootstrap_ratio([0.5, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        bootstrap_ratio([], [])
