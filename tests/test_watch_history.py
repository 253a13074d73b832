"""`series_watch_history` and the `media_users` sensor: real HTTP to the sample server, real PostgreSQL."""

import pytest
from dagster import DagsterInstance, build_sensor_context, instance_for_test, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from aperture_assets.catalog import series_catalog
from aperture_assets.users import media_users_sensor, users_partitions
from aperture_assets.watch_history import series_watch_history
from aperture_resources.pipeline_config import PipelineConfig


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


def user_ids(server) -> dict[str, str]:
    return {u["Name"]: u["Id"] for u in server.state.users_json()}


def sync_catalog(resources):
    assert materialize([series_catalog], resources=resources).success


def sync_history(resources, instance: DagsterInstance, keys: list[str], raise_on_error=True):
    instance.add_dynamic_partitions(users_partitions.name, keys)
    tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    return materialize([series_watch_history], resources=resources, instance=instance, tags=tags,
                       raise_on_error=raise_on_error)


def progress(sql, user_id: str) -> dict[str, tuple]:
    rows = sql("SELECT s.name, p.state, p.episodes_watched, p.episodes_available, p.max_play_count, p.is_favorite "
               "FROM series_progress p JOIN series s ON s.id = p.series_id WHERE p.user_id = %s", (user_id,))
    return {name: tuple(rest) for name, *rest in rows}


def test_states_for_every_case_in_the_sample_data(resources, sample_server, instance, sql):
    sync_catalog(resources)
    ids = user_ids(sample_server)
    result = sync_history(resources, instance, [ids["alice"], ids["bob"]])
    assert result.success
    alice = progress(sql, ids["alice"])
    assert alice["Breaking Bad"][0] == "completed"                     # every episode, Ended
    assert alice["The Wire"][0] == "in_progress" and 0 < alice["The Wire"][1] < alice["The Wire"][2]
    assert alice["Ozark"][0] == "in_progress" and alice["Ozark"][1] == 0  # only a resume position
    assert alice["The Sopranos"][0] == "completed" and alice["The Sopranos"][3] >= 2  # rewatch
    assert alice["Mindhunter"][0] == "not_started" and alice["Mindhunter"][4]       # favourite only
    bob = progress(sql, ids["bob"])
    assert bob["Severance"][0] == "caught_up"                           # every episode, Continuing


def test_unmarked_episode_becomes_unwatched_and_no_change_resync_changes_nothing(
        resources, sample_server, instance, sql):
    sync_catalog(resources)
    alice = user_ids(sample_server)["alice"]
    assert sync_history(resources, instance, [alice]).success
    again = sync_history(resources, instance, [alice])
    m = again.asset_materializations_for_node("series_watch_history")[0].metadata
    assert m["rows_changed"].value == 0

    episode = sql("SELECT e.id FROM episodes e JOIN series s ON s.id = e.series_id WHERE s.name = 'Breaking Bad' "
                  "AND e.season_number = 1 AND e.episode_number = 1")[0][0]
    sample_server.state.mark_played(alice, episode, False)
    assert sync_history(resources, instance, [alice]).success
    assert sql("SELECT count(*) FROM episode_watch_state WHERE user_id = %s AND episode_id = %s AND played",
               (alice, episode))[0][0] == 0
    assert progress(sql, alice)["Breaking Bad"][0] == "in_progress"


def test_a_5xx_mid_read_leaves_the_previous_state_intact(resources, sample_server, instance, sql):
    sync_catalog(resources)
    alice = user_ids(sample_server)["alice"]
    assert sync_history(resources, instance, [alice]).success
    before = sql("SELECT * FROM series_progress WHERE user_id = %s ORDER BY series_id", (alice,))
    episode = sql("SELECT episode_id FROM episode_watch_state WHERE user_id = %s AND played LIMIT 1", (alice,))[0][0]
    sample_server.state.mark_played(alice, episode, False)
    sample_server.fail_next("/UserItems/Resume", status=500, times=20)
    assert not sync_history(resources, instance, [alice], raise_on_error=False).success
    assert sql("SELECT * FROM series_progress WHERE user_id = %s ORDER BY series_id", (alice,)) == before


def test_backfill_over_several_users_is_one_run_and_isolates_failures(resources, sample_server, instance, sql):
    sync_catalog(resources)
    ids = user_ids(sample_server)
    keys = [ids[name] for name in ("alice", "bob", "carol", "dave")]
    result = sync_history(resources, instance, keys)
    assert result.success
    assert len(instance.get_runs()) == 1
    assert {r[0] for r in sql("SELECT DISTINCT user_id FROM series_progress")} == set(keys)
    kids = progress(sql, ids["dave"])
    assert any("Bluey" in name for name in kids)
    per_user = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert set(per_user) == set(keys)
    alice = per_user[ids["alice"]]
    assert alice["series_completed"].value >= 3 and alice["series_in_progress"].value >= 2
    assert "Breaking Bad" in alice["top_series"].value and "Bluey" not in alice["top_series"].value
    assert alice["run_users"].value == 4  # run totals ride along on every partition


def test_sensor_adds_and_removes_user_partitions(resources, sample_server, instance, sql):
    ids = user_ids(sample_server)
    context = build_sensor_context(instance=instance, resources=resources)
    result = media_users_sensor(context)
    added = {key for req in result.dynamic_partitions_requests for key in req.partition_keys}
    assert ids["alice"] in added and ids["frank"] not in added  # frank is disabled
    assert sql("SELECT is_disabled FROM media_users WHERE name = 'frank'")[0][0] is True
    instance.add_dynamic_partitions(users_partitions.name, sorted(added))

    narrowed = {**resources, "pipeline": PipelineConfig(users="alice,bob")}
    result = media_users_sensor(build_sensor_context(instance=instance, resources=narrowed))
    removed = {key for req in result.dynamic_partitions_requests for key in req.partition_keys}
    assert removed == added - {ids["alice"], ids["bob"]}
