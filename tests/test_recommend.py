"""Pure ranking logic on small hand-made catalogs: the exclusion table, multi-taste users, cold start,
evidence, baselines and metrics."""

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np

from aperture_assets.logic.collaborative import ease
from aperture_assets.logic.explanations import explain, parse, template
from aperture_assets.logic.recommend import (
    SHOWN_COMPONENTS,
    Catalog,
    History,
    Params,
    content_only_baseline,
    popular_baseline,
    ranking_metrics,
    recommend,
    retaste,
    score,
)
from aperture_assets.logic.scoring import Watched, Weights

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def unit(*values):
    v = np.array(values, dtype=float)
    return v / np.linalg.norm(v)


def catalog(rows: dict[str, tuple], popularity: dict[str, int] | None = None) -> Catalog:
    """rows: show -> (vector, rating, genres)."""
    shows = list(rows)
    cat = Catalog(shows=shows, series_ids=[f"id-{s}" for s in shows], names=[s.title() for s in shows],
                  ratings=[rows[s][1] for s in shows], genres=[rows[s][2] for s in shows],
                  vectors=np.stack([rows[s][0] for s in shows]))
    cat.popularity = np.array([(popularity or {}).get(s, 0) for s in shows], dtype=float)
    return cat


def seen(show: str, state: str, watched: int = 10, available: int = 10, fav: bool = False, days: int = 10) -> History:
    return History(show, state, Watched(show, watched, available, 1, fav, NOW - timedelta(days=days)))


CRIME = {f"crime{i}": (unit(1, 0.1 * i, 0, 0), 8.0, ["Crime"]) for i in range(6)}
NATURE = {f"nature{i}": (unit(0, 0.1 * i, 1, 0), 8.0, ["Documentary"]) for i in range(6)}
KIDS = {f"kids{i}": (unit(0, 0.1 * i, 0, 1), 9.5, ["Animation"]) for i in range(6)}
WORLD = catalog({**CRIME, **NATURE, **KIDS}, popularity={"kids0": 9, "kids1": 8, "nature5": 1})


def test_exclusion_table_case_by_case():
    history = [seen("crime0", "completed"), seen("crime1", "caught_up"), seen("crime2", "in_progress", 3),
               seen("crime3", "not_started", 0, fav=True)]
    result = recommend(WORLD, history, {}, NOW, Params(count=20))
    picked = {p.show for p in result.picks}
    assert not picked & {"crime0", "crime1", "crime2"}
    assert "crime3" in picked  # favourited but not started: still a pick
    assert result.excluded == {"completed": 1, "caught_up": 1, "in_progress": 1}
    assert not result.cold_start


def test_a_user_with_two_tastes_gets_picks_from_both():
    history = [seen("crime0", "completed"), seen("crime1", "completed"), seen("nature0", "completed"),
               seen("nature1", "completed")]
    picks = recommend(WORLD, history, {}, NOW, Params(count=4)).picks
    genres = {WORLD.genres[WORLD.index[p.show]][0] for p in picks}
    assert genres == {"Crime", "Documentary"}
    first = picks[0]
    assert first.evidence and first.evidence[0]["similarity"] > 0.9
    assert first.evidence[0]["name"] in {"Crime0", "Crime1", "Nature0", "Nature1"}


def test_collaborative_signal_lifts_what_similar_users_watched_and_names_why():
    history = [seen("crime0", "completed"), seen("nature0", "completed")]
    tastes = {"me": {"crime0": 1.0, "nature0": 1.0}, "twin": {"crime0": 1.0, "nature0": 1.0, "kids5": 3.0},
              "twin2": {"crime0": 1.0, "kids5": 1.0}, "stranger": {"nature3": 1.0, "kids4": 1.0}}
    model = ease(tastes, lam=1.0)
    with_others = recommend(WORLD, history, model.signal("me"), NOW, Params(count=6))
    alone = [p.show for p in recommend(WORLD, history, {}, NOW, Params(count=6)).picks]
    shows = [p.show for p in with_others.picks]
    assert "kids5" in shows and "kids5" not in alone
    assert "kids4" not in shows  # only a stranger watched it
    kids5 = next(p for p in with_others.picks if p.show == "kids5")
    assert kids5.components["collaborative"] > 0
    drivers = [e for e in kids5.evidence if "collaborative" in e["source"]]
    assert drivers and drivers[0]["name"] == "Crime0"  # both co-watchers of kids5 watched crime0
    assert all(e["co_watch_weight"] > 0 for e in drivers)


def test_components_add_up_to_the_score_and_mmr_reorders_are_marked():
    history = [seen("crime0", "completed"), seen("crime1", "completed"), seen("nature0", "completed")]
    params = Params(count=8, mmr_lambda=0.5)
    picks = recommend(WORLD, history, {"kids3": 1.0, "crime5": 0.5}, NOW, params).picks
    for p in picks:
        total = sum(p.components[name] for name in SHOWN_COMPONENTS if name != "negative") - p.components["negative"]
        assert abs(total - p.score) < 1e-3, p
    assert any(later.score > earlier.score for earlier, later in itertools.pairwise(picks))
    for earlier, later in itertools.pairwise(picks):
        if later.score > earlier.score:  # MMR held it back for resembling a pick above it
            assert later.components["mmr_similarity"] > earlier.components["mmr_similarity"]
    plain = recommend(WORLD, history, {"kids3": 1.0, "crime5": 0.5}, NOW, Params(count=8, mmr_lambda=1.0)).picks
    assert [p.score for p in plain] == sorted((p.score for p in plain), reverse=True)


def test_weights_change_the_ranking_and_are_stored_with_the_parameters():
    history = [seen("crime0", "completed")]
    popular_heavy = Params(count=3, weights=Weights(content=0.1, collaborative=0.0, popularity=1.0, rating=0.0))
    content_heavy = Params(count=3, weights=Weights(content=1.0, collaborative=0.0, popularity=0.0, rating=0.0))
    assert [p.show for p in recommend(WORLD, history, {}, NOW, popular_heavy).picks][:2] == ["kids0", "kids1"]
    assert all(p.show.startswith("crime") for p in recommend(WORLD, history, {}, NOW, content_heavy).picks)
    assert popular_heavy.as_dict()["weights"]["popularity"] == 1.0


def test_only_the_weights_ratios_matter_even_beside_a_dropped_shows_pull():
    """The grid's weights need not sum to 1: the pull of a dropped show is weighed against the blend as a whole,
    so scaling every weight leaves the picks and scores alone."""
    history = [seen("crime0", "completed"), seen("crime1", "in_progress", 1, 40, days=200)]  # crime1 dropped
    weights = Weights(content=0.25, collaborative=0.65, popularity=0.07, rating=0.03)
    tenth = Weights(**{name: w / 10 for name, w in weights.as_dict().items()})
    collab = {"crime2": 1.0, "kids3": 0.6}
    one = recommend(WORLD, history, collab, NOW, Params(count=6, weights=weights)).picks
    other = recommend(WORLD, history, collab, NOW, Params(count=6, weights=tenth)).picks
    assert any(p.components["negative"] > 0 for p in one)
    assert [(p.show, p.score) for p in one] == [(p.show, p.score) for p in other]


def test_cold_start_is_popular_then_rated_and_marked():
    result = recommend(WORLD, [], {}, NOW, Params(count=3))
    assert result.cold_start
    assert [p.show for p in result.picks][:2] == ["kids0", "kids1"]
    assert all(p.evidence == [] for p in result.picks)


def test_pool_limits_candidates_and_ended_status_is_not_a_reason():
    history = [seen("crime0", "completed")]
    result = recommend(WORLD, history, {}, NOW, Params(count=5), pool={"crime4", "kids2"})
    assert {p.show for p in result.picks} == {"crime4", "kids2"}


def test_baselines_and_metrics():
    history = [seen("crime0", "completed"), seen("crime1", "in_progress", 2)]
    popular = popular_baseline(WORLD, history, 3)
    assert popular[:2] == ["kids0", "kids1"]
    prior = content_only_baseline(WORLD, history, NOW, 5)
    assert "crime0" not in prior and "crime1" not in prior and len(prior) == 5
    assert ranking_metrics(["a", "b", "c"], {"b"}, 3) == {"hit_rate": 1.0, "recall": 1.0, "ndcg": 1 / np.log2(3)}
    assert ranking_metrics(["a", "b", "c"], {"z"}, 3)["hit_rate"] == 0.0


def test_explanations_parse_json_or_fall_back_to_template():
    picks = recommend(WORLD, [seen("crime0", "completed")], {}, NOW, Params(count=2)).picks
    texts, templated = explain(picks, lambda messages: '```json\n["First.", "Second one."]\n```')
    assert texts == ["First.", "Second one."] and templated == 0

    def broken(messages):
        raise TimeoutError("chat server went away")

    texts, templated = explain(picks, broken)
    assert texts == [template(p) for p in picks] and templated == 2
    assert "Crime0" in texts[0]
    assert parse("no json here", 2) == [None, None]


def test_retaste_is_scoring_again_under_another_half_life():
    """The tuning scores each user once and re-weights the content for other half-lives: it must be the same
    as scoring afresh (a recent and an old taste, so the half-life changes which one leads)."""
    history = [seen("crime0", "completed", days=5), seen("crime1", "completed", days=5),
               seen("nature0", "completed", days=900), seen("nature1", "completed", 4, days=900)]
    short, long = Params(half_life_days=60.0), Params(half_life_days=720.0)
    first = score(WORLD, history, {}, NOW, short)
    again = score(WORLD, history, {}, NOW, long)
    assert not np.allclose(first.components["content"], again.components["content"])
    moved = retaste(first, WORLD, history, NOW, long)
    for name, values in again.components.items():
        assert np.allclose(moved.components[name], values), name
