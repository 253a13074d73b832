"""Faults on the way in (media server, AI provider, database): every run recovers through retries or fails
with one clear sentence; none deletes or corrupts stored data; a re-run converges to the clean run's state.

Most tests start from a copy of the clean run's database (the state a scheduled run meets), inject the fault
into a run of the data stages, check nothing stored changed, then re-run without the fault and compare the
full snapshot with the clean run's."""

import threading
import time

import pytest
from aperture_dev.sample_server.server import FaultPlan

from aperture_resources.media_server import MediaServerError
from tests.robustness.helpers import (
    STAGES,
    diff,
    failure_messages,
    library_tree,
    ok,
    server_libraries,
    snapshot,
)

DATA_STAGES = STAGES[:4]  # catalog, embeddings, history, recommendations: everything stored in PostgreSQL


def converges(world, clean_run, stages=DATA_STAGES) -> None:
    """Faults off, run again: the state equals the clean run's."""
    world.server.faults = None
    world.ai.set_random_faults()
    world.media, world.ai_options = {}, {}
    results = world.run(stages)
    assert all(r.success for r in results.values()) and len(results) == len(stages), failure_messages(results)
    assert diff(snapshot(world.database), clean_run.snapshot) == {}


def one_clear_sentence(results, *fragments: str) -> str:
    messages = failure_messages(results)
    assert messages, "the run was expected to fail"
    text = " | ".join(messages)
    assert any(all(f in m for f in fragments) for m in messages), text
    assert "Traceback" not in messages[-1]
    return text


def test_a_second_clean_world_equals_the_reference(make_world, clean_run):
    world = make_world()
    assert ok(world.run())
    assert diff(snapshot(world.database), clean_run.snapshot) == {}
    assert library_tree(world.root).keys() == clean_run.tree.keys()
    assert server_libraries(world.server) == clean_run.libraries


def test_random_5xx_on_every_stage_recovers_through_retries(make_world, clean_run):
    plan = FaultPlan(error_rate=0.08, seed=7)
    world = make_world(faults=plan)
    world.ai.set_random_faults(error_rate=0.3, seed=3)
    world.media = {"retries": 5}
    world.ai_options = {"retries": 8, "batch_size": 8}
    assert ok(world.run()), failure_messages(world.run())
    assert plan.injected.get("error", 0) >= 3 and world.ai.random_injected["error"] >= 1
    assert diff(snapshot(world.database), clean_run.snapshot) == {}
    assert library_tree(world.root).keys() == clean_run.tree.keys()
    assert server_libraries(world.server) == clean_run.libraries  # retried writes made no second library


def test_some_requests_hanging_past_the_timeout_are_retried(make_world, clean_run):
    plan = FaultPlan(timeout_rate=0.05, hang_seconds=0.6, seed=11)
    world = make_world(template=clean_run.db_name, faults=plan)
    world.media = {"timeout_seconds": 0.25, "retries": 5}
    results = world.run(DATA_STAGES)
    assert all(r.success for r in results.values()), failure_messages(results)
    assert plan.injected.get("hang", 0) >= 1
    assert diff(snapshot(world.database), clean_run.snapshot) == {}


def test_a_server_that_always_hangs_fails_clearly_and_changes_nothing(make_world, clean_run):
    world = make_world(template=clean_run.db_name, faults=FaultPlan(timeout_rate=1.0, hang_seconds=0.5))
    world.media = {"timeout_seconds": 0.2, "retries": 2}
    before = snapshot(world.database)
    with pytest.raises(MediaServerError, match=r"timed out on GET /Users\.$"):  # the CLI prints this line
        world.run(("catalog",))
    world.server.faults = FaultPlan(timeout_rate=1.0, hang_seconds=0.5, rate_paths=("/Items",))
    results = world.run(("catalog",))
    assert not results["catalog"].success
    one_clear_sentence(results, "timed out on GET /Items")
    assert diff(snapshot(world.database), before) == {}
    converges(world, clean_run)


def full_read(world) -> None:
    """Make the next catalog sync read every page (no complete read on record), as the first sync and the daily
    one do: a no-change sync asks only for what changed and would not meet a fault in the pages."""
    with world.database.connect() as conn:
        conn.execute("DELETE FROM catalog_reads")


@pytest.mark.parametrize("stage", ["catalog", "history"])
@pytest.mark.parametrize(("fault", "message"), [
    ({"malformed_json_paths": ("/Items",)}, "malformed (non-JSON) response"),
    ({"short_page_paths": ("/Items",)}, "but reported"),  # an incomplete read: nothing is marked removed
], ids=["malformed-json", "short-page"])
def test_a_broken_read_fails_clearly_and_changes_nothing(make_world, clean_run, stage, fault, message):
    world = make_world(template=clean_run.db_name)
    if stage == "catalog":
        full_read(world)
    before = snapshot(world.database)
    if stage == "history":  # the catalog read succeeds; the per-user reads then get the broken pages
        assert world.run(("catalog",))["catalog"].success
    world.server.faults = FaultPlan(**fault)
    results = world.run((stage,))
    assert not results[stage].success
    one_clear_sentence(results, message)
    assert diff(snapshot(world.database), before) == {}
    converges(world, clean_run)


@pytest.mark.parametrize("stage", ["catalog", "history"])
def test_duplicate_ids_across_pages_never_hide_an_item(make_world, clean_run, stage):
    """An unstable sort order repeats an item on the next page and so skips another: the count matches
    TotalRecordCount, but the read is not complete and must not mark the skipped item removed (catalog) or
    drop the skipped play (history: a first sync reads everything in pages)."""
    if stage == "catalog":
        world = make_world(template=clean_run.db_name)
        full_read(world)
    else:
        world = make_world()
        assert all(r.success for r in world.run(("catalog", "embeddings")).values())
    before = snapshot(world.database)
    plan = world.server.faults = FaultPlan(duplicate_page_paths=("/Items",))
    world.media = {"page_size": 10}  # several pages for the users' history as well
    results = world.run((stage,))
    assert plan.injected.get("duplicate_page", 0) >= 1
    assert not results[stage].success
    one_clear_sentence(results, "twice within one read" if stage == "catalog" else
                       "duplicate item ids across the pages")
    assert diff(snapshot(world.database), before) == {}
    converges(world, clean_run)


def stop_when(server, predicate, then=None) -> threading.Thread:
    """Stop the server (from another thread) as soon as predicate() holds; then() afterwards."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.005)
        server.stop()
        if then:
            then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_the_server_going_away_mid_history_fails_clearly_and_loses_nothing(make_world, clean_run):
    world = make_world(template=clean_run.db_name, latency_ms=20)
    before = snapshot(world.database)
    start = world.server.request_count
    # incremental reads need ~3 requests per user: stop early enough to land mid-run
    watcher = stop_when(world.server, lambda: world.server.request_count >= start + 5)
    results = world.run(("history",))
    watcher.join()
    assert not results["history"].success
    one_clear_sentence(results, "cannot reach")
    assert diff(snapshot(world.database), before) == {}  # users done before the stop wrote identical rows
    world.server.start()  # the same library, back on a new port
    converges(world, clean_run)


def test_the_server_going_away_mid_library_leaves_no_duplicate_library(make_world, clean_run):
    """Stop the server while libraries are being created and scanned, bring it back, run again: one library per
    user, the same tree as a clean run, and the data untouched."""
    world = make_world(template=clean_run.db_name, latency_ms=10)
    assert world.run(("catalog",))["catalog"].success  # the catalog rows point at this server

    def library_writes_started() -> bool:
        return any(f.get("Name", "").endswith("AI Picks - TV") for f in list(world.server.state.folders))

    watcher = stop_when(world.server, library_writes_started)
    results = world.run(("library",))
    watcher.join()
    assert not results["library"].success
    one_clear_sentence(results, "cannot reach")
    world.server.start()
    results = world.run(("library",))
    assert results["library"].success, failure_messages(results)
    assert server_libraries(world.server) == clean_run.libraries
    assert library_tree(world.root).keys() == clean_run.tree.keys()
    assert diff(snapshot(world.database), clean_run.snapshot) == {}


def test_ai_provider_timeouts_leave_series_unembedded_then_converge(make_world, clean_run):
    world = make_world()
    world.ai.set_random_faults(timeout_rate=1.0, hang_seconds=0.6)
    world.ai_options = {"timeout_seconds": 0.2, "retries": 1}
    results = world.run(("catalog", "embeddings"))
    assert results["catalog"].success
    state = snapshot(world.database)
    assert state["series_embeddings"] == []  # nothing half-written
    assert diff({"series": state["series"]}, {"series": clean_run.snapshot["series"]}) == {}
    if not results["embeddings"].success:
        one_clear_sentence(results, "timed out")
    converges(world, clean_run, STAGES)
    assert library_tree(world.root).keys() == clean_run.tree.keys()


@pytest.mark.slow
def test_the_database_restarting_mid_run_loses_nothing_slow(make_world, clean_run, tmp_path):
    """A separate embedded PostgreSQL, stopped while the history stage writes, then started again."""
    from aperture_resources import database as db

    root = tmp_path / "pg"
    server_url = db.start_embedded(root, stop_on_exit=True)
    try:
        world = make_world()
        world.database = db.DatabaseResource(url=db.with_database(server_url, db.APP_DATABASE))
        assert all(r.success for r in world.run(("catalog", "embeddings")).values())
        before = snapshot(world.database)
        world.server.latency = 0.02
        start = world.server.request_count
        stopper = threading.Thread(target=lambda: (
            [time.sleep(0.005) for _ in iter(lambda: world.server.request_count < start + 15, False)],
            db.stop_embedded(root)), daemon=True)
        stopper.start()
        results = world.run(("history",))
        stopper.join()
        assert not results["history"].success
        text = one_clear_sentence(results, "")
        assert "users failed" in text or "cannot connect" in text, text

        db.start_embedded(root, stop_on_exit=True)
        during = snapshot(world.database)
        for table in ("libraries", "series", "seasons", "episodes", "series_embeddings"):
            assert during[table] == before[table], table  # untouched by the crash
        for table in ("episode_watch_state", "series_progress", "series_favorites"):
            assert set(during[table]) <= set(clean_run.snapshot[table]), table  # only whole users, all correct
        world.server.latency = 0
        converges(world, clean_run)
    finally:
        db.stop_embedded(root)
