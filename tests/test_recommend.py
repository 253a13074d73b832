"""Pure ranking logic on small hand-made catalogs: the exclusion table, multi-taste users, cold start,
evidence, baselines and metrics."""

from datetime import UTC, datetime, timedelta

import numpy as np

from aperture_assets.logic.explanations import explain, parse, template
from aperture_assets.logic.recommend import (
    Catalog,
    History,
    Params,
    popular_baseline,
    prior_tool_baseline,
    ranking_metrics,
    recommend,
)
from aperture_assets.logic.scoring import Watched

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


def test_collaborative_signal_lifts_what_similar_users_watched():
    history = [seen("crime0", "completed")]
    others = {"twin": {"crime0": 1.0, "kids5": 3.0}, "stranger": {"nature3": 1.0}}
    with_others = [p.show for p in recommend(WORLD, history, others, NOW, Params(count=6)).picks]
    alone = [p.show for p in recommend(WORLD, history, {}, NOW, Params(count=6)).picks]
    assert "kids5" in with_others and "kids5" not in alone
    assert "nature3" not in with_others


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
    prior = prior_tool_baseline(WORLD, history, NOW, 5)
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
