"""What `aperture run` prints while stages run: start and end lines, progress at most every few seconds when the
output is not a terminal, a live bar when it is, and nothing but errors with -q."""

import io

from rich.console import Console

from aperture_assets.cli import output
from aperture_assets.cli.output import NORMAL, QUIET, StageConsole, changes, did
from aperture_assets.wiring import progress

CATALOG = {"series_total": 2000, "episodes_total": 101020, "rows_changed": 0}


def test_a_stage_is_announced_and_summed_up_through_the_progress_hooks(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(output, "PLAIN_EVERY_SECONDS", 0.0)
    console = StageConsole(NORMAL, terminal=False, write=lines.append)
    with progress.watching(console):
        body = progress.reported("series_catalog", lambda: type("Result", (), {"metadata": CATALOG})())
        progress.advance("series_catalog", "items", 500, 2000)
        body()
    progress.advance("series_catalog", "items", 900, 2000)  # after the block: no watcher, no line
    assert lines == ["aperture: series_catalog: 500 of 2,000 items",
                     "aperture: series_catalog: started",
                     lines[2]]
    assert lines[2].startswith("aperture: series_catalog: 2,000 series, 101,020 episodes, 0 rows changed, ")
    assert console.metadata["series_catalog"] == CATALOG


def test_plain_progress_lines_are_rate_limited_and_quiet_prints_nothing():
    lines: list[str] = []
    console = StageConsole(NORMAL, terminal=False, write=lines.append)
    console.started("series_embeddings")
    for done in range(1, 50):
        console.advanced("series_embeddings", "batches", done, 50)
    assert lines == ["aperture: series_embeddings: started"]  # within 10 s of the start: no progress line
    quiet: list[str] = []
    console = StageConsole(QUIET, terminal=False, write=quiet.append)
    console.started("series_library")
    console.advanced("series_library", "users", 1, 2)
    console.finished("series_library", True, 1.0, {"run_users": 2})
    assert quiet == [] and console.metadata["series_library"] == {"run_users": 2}


def test_a_terminal_gets_a_bar_that_is_gone_when_the_stage_ends():
    console = StageConsole(NORMAL, terminal=True, console=Console(file=io.StringIO(), force_terminal=True))
    console.started("series_watch_history")
    console.advanced("series_watch_history", "users", 3, 10)
    assert [t.completed for t in console.bars.tasks] == [3]
    console.finished("series_watch_history", False, 2.5, {})
    assert not console.bars.tasks and "series_watch_history" not in console.metadata


def test_what_each_stage_did_and_changed_reads_from_its_metadata():
    assert did("series_embeddings", {"embedded": 3, "skipped_unchanged": 1997, "failed": 0}) == \
        "3 embedded, 1,997 unchanged, 0 failed"
    assert changes("series_watch_history", {"run_users": 48, "run_users_unchanged": 45}) == ("3 users", "45 users")
    assert changes("series_library", {"run_files_written": 10, "run_files_removed": 2,
                                      "run_files_unchanged": 900}) == ("12 files", "900 files")
    assert changes("series_catalog", {}) == ("", "")
