"""`series_catalog` at scale: the streamed full read and the changes-only read (real HTTP, real PostgreSQL).

A no-change sync must cost a few requests, and the changes-only path must still see every change (an edit, a
removal, an addition) and still fail closed: an empty, short or repeating answer never marks anything removed.
"""

from aperture_dev.sample_server.server import FaultPlan
from dagster import materialize

from aperture_assets.defs.catalog.assets import series_catalog
from tests.conftest import media_resource


def run(resources):
    return materialize([series_catalog], resources=resources, raise_on_error=False)


def meta(result) -> dict:
    materialization = result.asset_materializations_for_node("series_catalog")[0]
    return {k: v.value for k, v in materialization.metadata.items()}


def catalog(sql) -> list[tuple]:
    return sql("SELECT id, name, removed_at IS NULL FROM series UNION ALL "
               "SELECT id, name, removed_at IS NULL FROM episodes ORDER BY 1")


def test_streamed_read_in_small_pages_equals_one_page_read(resources, sample_server, sql):
    """Pages of 7 (hundreds of pages, staged as they arrive) land exactly what pages of 100,000 land."""
    resources["media_server"] = media_resource(sample_server, page_size=100_000)
    assert run(resources).success
    whole = catalog(sql)
    with resources["database"].connect() as conn:
        conn.execute("TRUNCATE episodes, seasons, series, libraries, catalog_reads CASCADE")
    resources["media_server"] = media_resource(sample_server, page_size=7)
    result = run(resources)
    assert result.success
    assert meta(result)["read"] == "full" and meta(result)["http_requests"] > 300
    assert catalog(sql) == whole


def test_no_change_sync_asks_only_for_changes(resources, sample_server, sql):
    first = meta(run(resources))
    assert first["read"] == "full"
    second = meta(run(resources))
    assert second["read"] == "changes", second["read_reason"]
    assert second["rows_changed"] == 0
    assert second["http_requests"] <= 1 + 2 * 3 * 2  # libraries + (count, changes) per type per TV library
    assert second["http_requests"] < first["http_requests"]
    assert (second["series_total"], second["episodes_total"]) == (first["series_total"], first["episodes_total"])


def test_changes_only_read_applies_an_edit(resources, sample_server, sql):
    # the sample server counts every item as saved again after any change: one page must hold them all
    resources["media_server"] = media_resource(sample_server, page_size=5000)
    assert run(resources).success
    series_id = sql("SELECT id FROM series WHERE name = 'The Wire'")[0][0]
    sample_server.state.rename_series(series_id, "The Wire (Remastered)")
    m = meta(run(resources))
    assert m["read"] == "changes" and m["series_updated"] == 1 and m["series_removed"] == 0
    assert sql("SELECT name FROM series WHERE id = %s", (series_id,))[0][0] == "The Wire (Remastered)"


def test_a_removal_or_an_addition_forces_a_full_read(resources, sample_server, sql):
    assert run(resources).success
    series_id = sql("SELECT id FROM series WHERE name = 'The Wire'")[0][0]
    token = sample_server.state.remove_series(series_id)
    m = meta(run(resources))
    assert m["read"] == "full" and "count" in m["read_reason"]
    assert m["series_removed"] == 1 and m["episodes_removed"] > 0
    sample_server.state.restore_series(token)
    season_id = sql("SELECT id FROM seasons WHERE series_id = %s ORDER BY season_number DESC LIMIT 1",
                    (series_id,))[0][0]
    added = sample_server.state.add_episode(season_id, 99)
    m = meta(run(resources))
    assert m["read"] == "full" and m["series_restored"] == 1 and m["episodes_new"] == 1
    assert sql("SELECT removed_at IS NULL FROM episodes WHERE id = %s", (added,)) == [(True,)]


def test_an_empty_answer_after_a_complete_read_removes_nothing(resources, sample_server, sql):
    assert run(resources).success
    active = sql("SELECT count(*) FROM series WHERE removed_at IS NULL")[0][0]
    sample_server.fail_next("/Items", 200, times=1000, payload={"Items": [], "TotalRecordCount": 0, "StartIndex": 0})
    result = run(resources)
    assert not result.success
    assert sql("SELECT count(*) FROM series WHERE removed_at IS NULL")[0][0] == active
    assert sql("SELECT count(*) FROM catalog_reads")[0][0] > 0  # the stored read still stands


def test_short_or_repeating_pages_fail_the_streamed_read_and_change_nothing(resources, sample_server, sql):
    assert run(resources).success
    before = catalog(sql)
    sample_server.state.remove_series(sql("SELECT id FROM series WHERE name = 'The Wire'")[0][0])
    for plan in (FaultPlan(short_page_paths=("/Items",)), FaultPlan(duplicate_page_paths=("/Items",))):
        sample_server.faults = plan
        result = run(resources)
        assert not result.success
        assert catalog(sql) == before
    sample_server.faults = None
    assert meta(run(resources))["series_removed"] == 1


def test_a_shrunken_library_is_not_the_base_of_a_changes_only_read(resources, sample_server, sql):
    """A sync that marked nothing removed (most of a library vanished) leaves no stored read: the next sync reads
    in full again, so a removal that is real is never hidden behind equal counts."""
    assert run(resources).success
    for (series_id,) in sql("SELECT s.id FROM series s JOIN libraries l ON l.id = s.library_id "
                            "WHERE l.name = 'Kids TV' AND s.removed_at IS NULL"):
        sample_server.state.remove_series(series_id)
    assert meta(run(resources))["shrunken_libraries"]
    assert sql("SELECT count(*) FROM catalog_reads")[0][0] == 0
    assert meta(run(resources))["read"] == "full"
