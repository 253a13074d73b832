"""What `aperture run` and `aperture demo` print while the stages run: a line when each stage starts and one when
it ends saying what it did, a progress bar for long stages on a terminal (plain lines every few seconds
otherwise), and nothing but errors with -q."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

QUIET, NORMAL, VERBOSE = -1, 0, 1
PLAIN_EVERY_SECONDS = 10.0


def value(metadata: Mapping[str, Any], key: str, default: Any = 0) -> Any:
    """A metadata entry's plain value (MaterializeResult keeps MetadataValue objects as given)."""
    entry = metadata.get(key, default)
    return getattr(entry, "value", entry)


def _n(number: Any) -> str:
    return f"{int(number or 0):,}"


def did(stage: str, metadata: Mapping[str, Any]) -> str:
    """One phrase of what a finished stage did, from its materialization's metadata."""
    m = lambda key: value(metadata, key)  # noqa: E731
    if stage == "series_catalog":
        return (f"{_n(m('series_total'))} series, {_n(m('episodes_total'))} episodes, "
                f"{_n(m('rows_changed'))} rows changed")
    if stage == "series_embeddings":
        return f"{_n(m('embedded'))} embedded, {_n(m('skipped_unchanged'))} unchanged, {_n(m('failed'))} failed"
    if stage == "series_watch_history":
        return (f"{_n(m('run_users'))} users, {_n(m('run_rows_changed'))} rows changed, "
                f"{_n(m('run_incremental_reads'))} incremental reads")
    if stage == "series_recommendations":
        return (f"{_n(m('run_users'))} users, {_n(m('run_picks'))} picks, "
                f"{_n(m('run_cold_start_users'))} cold start")
    if stage == "series_library":
        return (f"{_n(m('run_users'))} users, {_n(m('run_files_written'))} files written, "
                f"{_n(m('run_files_removed'))} removed, {_n(m('run_libraries_created'))} libraries created")
    if stage == "recommendation_quality":
        return f"{_n(m('users_evaluated'))} users evaluated"
    return "done"


def changes(stage: str, metadata: Mapping[str, Any]) -> tuple[str, str]:
    """(changed, unchanged) of a finished stage, each with its unit, for the run summary."""
    m = lambda key: value(metadata, key)  # noqa: E731
    if not metadata:
        return "", ""
    if stage == "series_catalog":
        return f"{_n(m('rows_changed'))} rows", f"{_n(m('series_total'))} series read"
    if stage == "series_embeddings":
        return f"{_n(m('embedded'))} series", f"{_n(m('skipped_unchanged'))} series"
    if stage == "series_watch_history":
        unchanged = m("run_users_unchanged")
        return f"{_n(m('run_users') - unchanged)} users", f"{_n(unchanged)} users"
    if stage == "series_library":
        return f"{_n(m('run_files_written') + m('run_files_removed'))} files", f"{_n(m('run_files_unchanged'))} files"
    return "", ""


class StageConsole:
    """Prints the stages' progress (a `progress.Watcher`) and keeps each stage's metadata for the summary."""

    def __init__(self, verbosity: int = NORMAL, terminal: bool = False,
                 write: Callable[[str], None] | None = None, console: Console | None = None) -> None:
        self.verbosity = verbosity
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.write = write or (lambda line: self.console.print(line, markup=False))
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             console=self.console, transient=True) if terminal and verbosity > QUIET else None
        self.metadata: dict[str, Mapping[str, Any]] = {}
        self._tasks: dict[tuple[str, str], Any] = {}
        self._last_plain: dict[str, float] = {}
        self._lock = threading.Lock()

    def say(self, line: str) -> None:
        if self.verbosity > QUIET:
            self.write(f"aperture: {line}")

    def started(self, stage: str) -> None:
        self.say(f"{stage}: started")
        self._last_plain[stage] = time.monotonic()

    def advanced(self, stage: str, task: str, done: int, total: int | None) -> None:
        if self.verbosity <= QUIET:
            return
        with self._lock:
            if self.bars is not None:
                key = (stage, task)
                if key not in self._tasks:
                    if not self._tasks:
                        self.bars.start()
                    self._tasks[key] = self.bars.add_task(f"{stage}: {task}", total=total)
                self.bars.update(self._tasks[key], completed=done, total=total)
                return
            now = time.monotonic()
            if now - self._last_plain.get(stage, 0.0) >= PLAIN_EVERY_SECONDS:
                self._last_plain[stage] = now
                self.say(f"{stage}: {done:,}{f' of {total:,}' if total else ''} {task}")

    def finished(self, stage: str, ok: bool, seconds: float, metadata: Mapping[str, Any]) -> None:
        with self._lock:
            for key in [k for k in self._tasks if k[0] == stage]:
                self.bars.remove_task(self._tasks.pop(key))
            if self.bars is not None and not self._tasks:
                self.bars.stop()
        if ok:
            self.metadata[stage] = metadata
            self.say(f"{stage}: {did(stage, metadata)}, {seconds:.1f} s")
        else:
            self.say(f"{stage}: FAILED after {seconds:.1f} s")
