"""Live progress of the stages, for whoever watches this process: the `aperture` command's terminal. Runs the
Dagster daemon launches have no watcher, and the calls then cost nothing.

Every stage reports its start and end through `stage_body`; long stages also report steps of known size as they
go (catalog pages, embedding batches, users), from any thread.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol


class Watcher(Protocol):
    def started(self, stage: str) -> None: ...

    def advanced(self, stage: str, task: str, done: int, total: int | None) -> None: ...

    def finished(self, stage: str, ok: bool, seconds: float, metadata: Mapping[str, Any]) -> None: ...


_watcher: Watcher | None = None


@contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Send this process's stage progress to `watcher` while the block runs."""
    global _watcher
    previous, _watcher = _watcher, watcher
    try:
        yield
    finally:
        _watcher = previous


def started(stage: str) -> None:
    if _watcher is not None:
        _watcher.started(stage)


def advance(stage: str, task: str, done: int, total: int | None = None) -> None:
    """`done` of `total` units of `task` (e.g. "pages", "users") are finished in `stage`."""
    if _watcher is not None:
        _watcher.advanced(stage, task, done, total)


def finished(stage: str, ok: bool, seconds: float, metadata: Mapping[str, Any] | None = None) -> None:
    if _watcher is not None:
        _watcher.finished(stage, ok, seconds, metadata or {})


def reported(stage: str, body: Callable[..., Any]) -> Callable[..., Any]:
    """`body`, reporting its start and its end (with the metadata of the MaterializeResult it returns)."""

    @functools.wraps(body)
    def run(*args: Any, **kwargs: Any) -> Any:
        started(stage)
        begun, ok, result = time.perf_counter(), False, None
        try:
            result = body(*args, **kwargs)
            ok = True
            return result
        finally:
            finished(stage, ok, time.perf_counter() - begun, getattr(result, "metadata", None))

    return run
