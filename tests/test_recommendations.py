"""`series_recommendations` and `recommendation_quality` on the bundled sample server: real HTTP, real
PostgreSQL + pgvector, the real local embedding model."""

import copy
import json
from types import SimpleNamespace

import pytest
from aperture_dev.fake_ai_server import FakeAIServer
from aperture_dev.sample_server import SampleServer
from dagster import instance_for_test, materialize

from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.defs.embeddings.assets import series_embeddings
from aperture_assets.defs.recommendations.assets import RECOMPUTE_AFTER, series_recommendations
from aperture_assets.defs.recommendations.checks import recommendations_exclude_started
from aperture_assets.defs.recommendations.quality import recommendation_quality
from aperture_assets.defs.watch_history.assets import series_watch_history
from aperture_assets.wiring.dagster_internals import partition_range_tags
from aperture_assets.wiring.partitions import users_partitions
from aperture_resources.ai import AIProviderResource
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.preference_store import UserPreferences, save_preferences
from tests.conftest import media_resource

STARTED = {"alice": {"Breaking Bad", "The Wire", "Ozark", "The Sopranos", "Narcos", "Planet Earth", "Blue Planet II"},
           "bob": {"Severance", "Dark", "Black Mirror", "Silo"}}


def range_tags(keys: list[str]) -> dict[str, str]:
    return partition_range_tags(keys[0], keys[-1])


@pytest.fixture(scope="module")
def world(module_database, sample_data):
    server = SampleServer(copy.deepcopy(sample_data), mode="jellyfin", api_key="test-key").start()
    ids = {u["Name"]: u["Id"] for u in server.state.users_json() if not u["Policy"]["IsDisabled"]}
    keys = sorted(ids.values())
    resources = {"media_server": media_resource(server), "database": module_database, "pipeline": PipelineConfig(),
                 "ai": AIProviderResource()}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(users_partitions.name, keys)
        assert materialize([series_catalog, series_embeddings], resources=resources, instance=instance).success
        assert materialize([series_watch_history], resources=resources, instance=instance,
                           tags=range_tags(keys)).success
        yield SimpleNamespace(server=server, instance=instance, resources=resources, ids=ids, keys=keys,
                              database=module_database)
    server.stop()


def recommend_all(world, recompute: bool = True, **resource_overrides):
    """Every user's picks; fresh ones unless `recompute` is False (then picks made from the same inputs stand)."""
    resources = {**world.resources, **resource_overrides}
    return materialize([series_recommendations, recommendations_exclude_started], resources=resources,
                       instance=world.instance, tags=range_tags(world.keys),
                       run_config={"ops": {"series_recommendations": {"config": {"recompute": recompute}}}})


def latest(world, name: str) -> list[tuple]:
    with world.database.connect() as conn:
        return conn.execute(
            "SELECT r.rank, s.name, s.status, s.genres, r.cold_start, r.evidence, r.explanation, s.tvdb_id "
            "FROM latest_recommendations r JOIN series s ON s.id = r.series_id WHERE r.user_id = %s "
            "ORDER BY r.rank", (world.ids[name],)).fetchall()


def test_picks_follow_the_exclusion_table_and_the_check_passes(world):
    result = recommend_all(world)
    assert result.success
    check = result.get_asset_check_evaluations()[0]
    assert check.passed and check.metadata["users_checked"].value == len(world.keys)
    for name, started in STARTED.items():
        picks = latest(world, name)
        assert len(picks) == 12
        assert not {p[1] for p in picks} & started
    alice = latest(world, "alice")
    assert any(p[2] == "Ended" for p in alice)  # an Ended show is never itself a reason to exclude
    assert all(p[5] for p in alice)  # every pick carries evidence
    evidence_names = {e["name"] for p in alice for e in p[5]}
    assert evidence_names <= STARTED["alice"] | {"Mindhunter"}


def test_a_two_taste_user_gets_both_tastes(world):
    recommend_all(world)
    genres = [set(p[3]) for p in latest(world, "alice")]
    assert any("Crime" in g for g in genres)
    assert any("Documentary" in g for g in genres)


def test_cold_start_user_gets_a_marked_popular_list(world):
    recommend_all(world)
    grace = latest(world, "grace")
    assert len(grace) == 12 and all(p[4] for p in grace)
    assert not any(p[4] for p in latest(world, "alice"))


def test_duplicate_copies_count_as_one_show(world):
    recommend_all(world)
    for name in world.ids:
        tvdb = [p[7] for p in latest(world, name) if p[7]]
        assert len(tvdb) == len(set(tvdb)), name
    # dave watched the Kids TV copy of Avatar, kate the TV Shows copy: neither copy is recommended to them
    for name in ("dave", "kate"):
        assert "Avatar: The Last Airbender" not in {p[1] for p in latest(world, name)}


def test_every_run_is_stored_and_old_runs_are_pruned(world):
    for _ in range(6):
        assert recommend_all(world).success
    with world.database.connect() as conn:
        runs = conn.execute("SELECT count(*) FROM recommendation_runs WHERE user_id = %s",
                            (world.ids["alice"],)).fetchone()[0]
        params = conn.execute("SELECT parameters FROM recommendation_runs ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert runs == 5
    assert params["count"] == 12 and set(params["weights"]) == {"content", "collaborative", "popularity", "rating"}
    tuning = params["tuning"]  # the run keeps the settings it chose for this server and how they scored
    assert tuning["reason"] == "tuned" and tuning["validation_users"] >= 5
    assert tuning["chosen"]["content"] == params["weights"]["content"]
    assert tuning["chosen"]["mmr_lambda"] == params["mmr_lambda"]
    assert tuning["validation_ndcg"] >= tuning["default_ndcg"]


def test_metadata_shows_the_ranked_list_per_user(world):
    result = recommend_all(world)
    events = [e for e in result.get_asset_materialization_events()]
    by_partition = {e.partition: e.materialization.metadata for e in events}
    alice = by_partition[world.ids["alice"]]
    assert "| 1 |" in alice["ranked"].value
    assert alice["excluded_completed"].value >= 3 and alice["excluded_in_progress"].value >= 2
    keys = [k for k in alice if k.startswith("pick ")]
    assert keys == [f"pick {i:02d}" for i in range(1, 13)]  # one visible entry per pick, in rank order
    picks = latest(world, "alice")
    for key, pick in zip(keys, picks, strict=True):
        line = alice[key].value
        assert line.startswith(f"{pick[1]} — score ") and "content " in line and "collaborative " in line
        assert "because you watched " in line
    assert "MMR" in alice["order"].value
    run = result.get_asset_materialization_events()[-1].materialization.metadata
    assert run["tuning"].value.startswith("tuned") and run["tuning_validation_users"].value >= 5
    assert run["collaborative_seconds"].value < 5


def test_explanations_come_from_the_chat_model_and_fall_back_on_failure(world):
    def reply(messages):
        count = messages[-1]["content"].count("\n")
        return json.dumps([f"Grounded reason {i}." for i in range(count)])

    with FakeAIServer(api_key="k", chat_reply=reply) as fake:
        ai = AIProviderResource(provider="openai", openai_base_url=fake.openai_base_url, openai_api_key="k",
                                retries=1, backoff_seconds=0.01)
        embedded = materialize([series_embeddings], resources={**world.resources, "ai": ai}, instance=world.instance)
        assert embedded.success
        on = PipelineConfig(explanations="on")
        assert recommend_all(world, ai=ai, pipeline=on).success
        assert [p[6] for p in latest(world, "alice")][:2] == ["Grounded reason 0.", "Grounded reason 1."]

        fake.fail_next(50, 500)
        result = recommend_all(world, ai=ai, pipeline=on)
        assert result.success
        texts = [p[6] for p in latest(world, "alice")]
        assert all(t and t.startswith(("Because you watched", "Popular")) for t in texts)
        assert result.get_asset_materialization_events()[0].materialization.metadata  # run recorded normally


def test_quality_beats_both_baselines_on_the_sample_data(world):
    result = materialize([recommendation_quality], resources=world.resources, instance=world.instance)
    assert result.success
    m = {k: v.value for k, v in result.asset_materializations_for_node("recommendation_quality")[0].metadata.items()}
    assert m["users_evaluated"] >= 8
    assert m["aperture_ndcg"] > m["popular_ndcg"]
    assert m["aperture_ndcg"] > m["content_only_ndcg"]
    assert m["aperture_hit_rate"] >= max(m["popular_hit_rate"], m["content_only_hit_rate"])
    for method in ("aperture_default", "ease", "item_knn"):  # every method in the same run
        assert 0.0 <= m[f"{method}_ndcg"] <= 1.0 and f"ndcg_ratio_vs_{method}" in m
    assert "EASE alone" in m["table"] and "item-kNN alone" in m["table"]
    chart = m["ndcg_chart"].splitlines()
    longest = max(chart, key=lambda line: line.count("█"))
    best = max(("aperture", "aperture_default", "popular", "content_only", "ease", "item_knn"),
               key=lambda method: m[f"{method}_ndcg"])
    assert abs(float(longest.split()[-1]) - m[f"{best}_ndcg"]) < 1e-3  # the longest bar is the best method


def test_picks_made_from_the_same_inputs_stand_and_any_change_makes_fresh_ones(world):
    """A run after which nothing changed rewrites nothing (the libraries downstream see the same lists); a changed
    input, a changed policy or picks older than RECOMPUTE_AFTER make fresh ones."""

    def runs() -> dict[str, int]:
        return latest_run_ids(world)

    assert recommend_all(world).success
    before, alice = runs(), world.ids["alice"]
    result = recommend_all(world, recompute=False)
    assert runs() == before  # no user's picks were made again
    totals = result.asset_materializations_for_node("series_recommendations")[-1].metadata
    assert totals["run_users_unchanged"].value == len(world.keys) and totals["run_picks"].value == 0
    shown = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}[alice]
    assert "unchanged_since" in shown and shown["picks"].value == len(latest(world, "alice")) > 0
    assert [k for k in shown if k.startswith("pick ")] == [f"pick {i:02d}" for i in range(1, shown["picks"].value + 1)]

    with world.database.connect() as conn:  # an admin's rule for one user: everyone's inputs changed
        save_preferences(conn, UserPreferences(alice, exclude_genres=["Comedy"]))
    assert recommend_all(world, recompute=False).success
    fresh = runs()
    assert all(fresh[u] > before[u] for u in before)
    assert all("Comedy" not in (genres or []) for _, _, _, genres, *_ in latest(world, "alice"))

    policy = world.server.state.users[alice].policy
    saved = copy.deepcopy(policy)
    try:
        policy["EnabledFolders"] = [*policy.get("EnabledFolders", []), "a-picks-library"]
        assert recommend_all(world, recompute=False).success
        assert runs() == fresh  # a library holding no catalog series (as a picks library) changes no pick
        policy["BlockedTags"] = [*policy.get("BlockedTags", []), "no-such-tag"]
        assert recommend_all(world, recompute=False).success
        assert runs()[alice] > fresh[alice]  # what a user may open is an input
    finally:
        policy.clear()
        policy.update(saved)
        with world.database.connect() as conn:
            conn.execute("DELETE FROM user_preferences WHERE user_id = %s", (alice,))
    assert recommend_all(world).success

    latest_runs = runs()
    with world.database.connect() as conn:  # picks as old as RECOMPUTE_AFTER are made again: the clock moves scores
        conn.execute("UPDATE recommendation_runs SET created_at = created_at - %s WHERE id = ANY(%s)",
                     (RECOMPUTE_AFTER, list(latest_runs.values())))
    assert recommend_all(world, recompute=False).success
    assert all(runs()[u] > latest_runs[u] for u in latest_runs)


def test_a_user_who_may_open_nothing_keeps_an_empty_list_without_a_new_run(world):
    policy = world.server.state.users[world.ids["bob"]].policy
    saved = copy.deepcopy(policy)
    try:
        policy["EnableAllFolders"], policy["EnabledFolders"] = False, []
        assert recommend_all(world).success
        assert latest(world, "bob") == []
        before = latest_run_ids(world)
        result = recommend_all(world, recompute=False)
        assert latest_run_ids(world) == before  # an empty list stands too: it does not make everyone's run again
        totals = result.asset_materializations_for_node("series_recommendations")[-1].metadata
        assert totals["run_users_unchanged"].value == len(world.keys)
        bob = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}[
            world.ids["bob"]]
        assert bob["picks"].value == 0 and "unchanged_since" in bob
    finally:
        policy.clear()
        policy.update(saved)


def latest_run_ids(world) -> dict[str, int]:
    """Each user's latest recommendation run id."""
    with world.database.connect() as conn:
        return dict(conn.execute("SELECT user_id, max(id) FROM recommendation_runs GROUP BY user_id").fetchall())
