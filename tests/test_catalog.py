"""`series_catalog` end to end: real HTTP to the sample server, real PostgreSQL."""

from dagster import materialize

from aperture_assets.defs.catalog.assets import series_catalog
from aperture_resources.pipeline_config import PipelineConfig
from tests.conftest import media_resource


def run(resources):
    return materialize([series_catalog], resources=resources, raise_on_error=False)


def meta(result) -> dict:
    materialization = result.asset_materializations_for_node("series_catalog")[0]
    return {k: v.value for k, v in materialization.metadata.items()}


def expected_counts(data: dict) -> tuple[int, int]:
    tv = {lib["name"] for lib in data["libraries"] if lib["collection_type"] == "tvshows"}
    series = episodes = 0
    for s in data["series"]:
        copies = len([lib for lib in s["libraries"] if lib in tv])
        series += copies
        episodes += copies * (sum(s["seasons"]) + s.get("specials", 0) + s.get("unnumbered_episodes", 0)
                              - (1 if s.get("multi_episode") else 0))
    return series, episodes


def test_full_sync_lands_every_series_and_episode(resources, sample_data, sql):
    result = run(resources)
    assert result.success
    m = meta(result)
    series, episodes = expected_counts(sample_data)
    assert (m["series_total"], m["series_new"]) == (series, series)
    assert m["episodes_total"] == episodes
    assert sql("SELECT count(*) FROM series WHERE removed_at IS NULL")[0][0] == series
    assert sql("SELECT count(*) FROM episodes WHERE removed_at IS NULL")[0][0] == episodes

    _, year, network, genres, tvdb, poster = sql(
        "SELECT name, year, network, genres, tvdb_id, poster_path FROM series WHERE name = 'Breaking Bad'")[0]
    source = next(s for s in sample_data["series"] if s["name"] == "Breaking Bad")
    assert (year, network, genres, tvdb) == (source["year"], source["studios"][0], source["genres"],
                                             source["provider_ids"]["Tvdb"])
    assert "/Images/Primary?tag=" in poster


def test_edge_cases_are_stored_not_crashed(resources, sample_data, sql):
    assert run(resources).success
    hostile = [s["name"] for s in sample_data["series"] if "/" in s["name"]]
    assert hostile and sql("SELECT count(*) FROM series WHERE name = ANY(%s)", (hostile,))[0][0] == len(hostile)
    if any(s.get("year") is None for s in sample_data["series"]):
        assert sql("SELECT count(*) FROM series WHERE year IS NULL")[0][0] >= 1
    if any(s.get("unnumbered_episodes") for s in sample_data["series"]):
        assert sql("SELECT count(*) FROM episodes WHERE episode_number IS NULL")[0][0] >= 1
    if any(s.get("multi_episode") for s in sample_data["series"]):
        assert sql("SELECT count(*) FROM episodes WHERE episode_number_end IS NOT NULL")[0][0] >= 1
    duplicated = [s for s in sample_data["series"] if len(s["libraries"]) > 1]
    for show in duplicated:
        copies = sql("SELECT count(DISTINCT id), count(DISTINCT library_id) FROM series WHERE tvdb_id = %s",
                     (show["provider_ids"]["Tvdb"],))[0]
        assert copies == (2, 2)


def test_no_change_resync_changes_no_row(resources, sql):
    assert run(resources).success
    before = sql("SELECT max(updated_at), count(*) FROM episodes")[0]
    second = run(resources)
    assert second.success
    m = meta(second)
    assert m["rows_changed"] == 0
    assert sql("SELECT max(updated_at), count(*) FROM episodes")[0] == before


def test_removed_series_are_marked_and_restored(resources, sample_server, sql):
    assert run(resources).success
    series_id = sql("SELECT id FROM series WHERE name = 'The Wire'")[0][0]
    removed = sample_server.state.remove_series(series_id)
    m = meta(run(resources))
    assert m["series_removed"] == 1 and m["episodes_removed"] > 0
    assert sql("SELECT removed_at IS NOT NULL FROM series WHERE id = %s", (series_id,))[0][0]
    sample_server.state.restore_series(removed)
    m = meta(run(resources))
    assert m["series_restored"] == 1 and m["series_removed"] == 0
    assert sql("SELECT count(*) FROM episodes WHERE series_id = %s AND removed_at IS NOT NULL", (series_id,))[0][0] == 0


def test_failed_read_marks_nothing_removed(resources, sample_server, sql):
    assert run(resources).success
    before = sql("SELECT count(*) FROM series WHERE removed_at IS NULL")[0][0]
    sample_server.state.remove_series(sql("SELECT id FROM series WHERE name = 'The Wire'")[0][0])
    sample_server.fail_next("/Items", status=503, times=50)
    result = run(resources)
    assert not result.success
    assert sql("SELECT count(*) FROM series WHERE removed_at IS NULL")[0][0] == before


def test_tv_libraries_setting_narrows_the_sync(resources, sample_server, sql):
    resources["media_server"] = media_resource(sample_server, tv_libraries="Kids TV")
    assert run(resources).success
    assert {r[0] for r in sql("SELECT DISTINCT l.name FROM series s JOIN libraries l ON l.id = s.library_id")} == {
        "Kids TV"}


def test_wrong_api_key_fails_with_one_sentence_naming_the_variable(resources, sample_server):
    resources["media_server"] = media_resource(sample_server, api_key="wrong")
    result = run(resources)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "APERTURE_MEDIA_SERVER_API_KEY was rejected" in str(failure.step_failure_data.error.cause or
                                                              failure.step_failure_data.error)


def test_emby_sync_matches_jellyfin(emby_server, database, sample_data, sql):
    result = run({"media_server": media_resource(emby_server), "database": database, "pipeline": PipelineConfig()})
    assert result.success
    assert meta(result)["series_total"] == expected_counts(sample_data)[0]
    assert sql("SELECT count(*) FROM series WHERE poster_path LIKE '/emby/Items/%%'")[0][0] > 0
