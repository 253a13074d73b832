"""One-shot pipeline runs for the CLI: the stages in order, each a Dagster run recorded
in the instance (so it shows in the UI), per-user stages as one run over every user partition. Each run names
this process in its worker tag, so a later command can tell when it was killed (see wiring/recovery.py)."""

import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from dagster import DagsterInstance, Definitions, ExecuteInProcessResult, build_resources

from aperture_assets.wiring.dagster_internals import attach_origin, origin_tags, partition_range_tags, step_succeeded
from aperture_assets.wiring.jobs import STAGE_ASSETS
from aperture_assets.wiring.partitions import apply_user_partitions, users_partitions
from aperture_assets.wiring.recovery import fail_own_runs, run_worker

# The stages in order, plus the quality report right after the picks it evaluates.
STAGES: tuple[tuple[str, bool], ...] = (
    ("sync_series", False),
    ("generate_series_embeddings", False),
    ("sync_series_watch_history", True),
    ("generate_series_recommendations", True),
    ("evaluate_recommendations", False),
    ("sync_series_libraries", True),
)
STAGE_NAMES = tuple(name for name, _ in STAGES)
STAGE_ASSET = {"sync_series": "series_catalog", "generate_series_embeddings": "series_embeddings",
               "sync_series_watch_history": "series_watch_history",
               "generate_series_recommendations": "series_recommendations",
               "evaluate_recommendations": "recommendation_quality", "sync_series_libraries": "series_library"}
SPEC_STAGES = tuple(name for name in STAGE_NAMES if name != "evaluate_recommendations")


RUN_LOCK = 0x61706572  # pg advisory lock key held by a whole `aperture run` ("aper")


class RunInProgressError(RuntimeError):
    """Another `aperture run` holds the run lock on this database."""


@contextmanager
def run_lock(database_url: str) -> Iterator[None]:
    """Hold a session advisory lock for the whole run, so two one-shot runs on one database never interleave
    (a second one exits at once with who holds it; the lock goes away with the holder's connection)."""
    with psycopg.connect(database_url, autocommit=True, application_name=f"aperture run (pid {os.getpid()})") as conn:
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK,)).fetchone()[0]:
            holder = conn.execute(
                "SELECT a.backend_start, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s LIMIT 1", (RUN_LOCK,)).fetchone()
            since = f"started {holder[0]:%Y-%m-%d %H:%M:%S %Z} by {holder[1] or 'another process'}" if holder \
                else "started moments ago"
            raise RunInProgressError(f"another aperture run is in progress ({since}); try again when it has "
                                     "finished.")
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (RUN_LOCK,))


@dataclass
class StageResult:
    name: str
    success: bool
    seconds: float
    run_id: str = ""
    error: str = ""


def run_stages(defs: Definitions, instance: DagsterInstance, selected: Sequence[str] | None = None,
               echo: Callable[[str], None] = print, log_level: str = "WARNING") -> list[StageResult]:
    """Run the selected stages in order; stops at the first failure (later stages would use stale input).
    Dagster's own event lines print from `log_level` up. Raises RunInProgressError if another run holds the
    run lock on the same database."""
    wanted = ("media_server", "database", "pipeline")
    chosen = {k: v for k, v in (defs.resources or {}).items() if k in wanted}
    with build_resources(chosen) as res, run_lock(res.database.app_url()):  # build_resources resolves EnvVars
        keys = apply_user_partitions(instance, res.media_server, res.database, res.pipeline)
        return _run_stages(defs, instance, keys, selected, echo, {"loggers": {"console": {"config": {
            "log_level": log_level}}}})


def _run_stages(defs: Definitions, instance: DagsterInstance, keys: list[str], selected: Sequence[str] | None,
                echo: Callable[[str], None], config: dict) -> list[StageResult]:
    ordered = [k for k in instance.get_dynamic_partitions(users_partitions.name) if k in set(keys)]
    echo(f"users: {len(ordered)} enabled")
    tags = partition_range_tags(ordered[0], ordered[-1]) if ordered else {}
    chosen = [name for name in STAGE_NAMES if name in (selected or SPEC_STAGES)]
    results: list[StageResult] = []
    if ordered and set(SPEC_STAGES) <= set(chosen):  # the whole pipeline: one run saves ~0.5 s of Dagster per stage
        results = _full_refresh(defs, instance, tags, config)
        chosen = [name for name in chosen if name not in SPEC_STAGES and all(r.success for r in results)]
    for name, partitioned in STAGES:
        if name not in chosen:
            continue
        if partitioned and not ordered:
            echo(f"{name}: skipped (no enabled users)")
            continue
        result = _execute(defs, name, instance, tags if partitioned else {}, config)
        stats = instance.get_run_stats(result.run_id)
        seconds = (stats.end_time or 0) - (stats.start_time or 0)
        results.append(StageResult(name, result.success, seconds, result.run_id,
                                   "" if result.success else failure(result)))
        if not result.success:
            break
    return results


def _full_refresh(defs: Definitions, instance: DagsterInstance, tags: dict, config: dict) -> list[StageResult]:
    """The five stages as one `full_refresh` run; each stage's result taken from its step's stats."""
    result = _execute(defs, "full_refresh", instance, tags, config)
    steps = {step.step_key: step for step in instance.get_run_step_stats(result.run_id)}
    results = []
    for name, asset in zip(SPEC_STAGES, STAGE_ASSETS, strict=True):
        step = steps.get(asset)
        ok = step_succeeded(step)
        seconds = (step.end_time or 0) - (step.start_time or 0) if step else 0.0
        results.append(StageResult(name, ok, seconds, result.run_id, "" if ok else failure(result)))
        if not ok:
            break
    return results


def _execute(defs: Definitions, job: str, instance: DagsterInstance, tags: Mapping[str, str], config: dict
             ) -> ExecuteInProcessResult:
    run_id = str(uuid.uuid4())
    result = defs.resolve_job_def(job).execute_in_process(
        run_config=config, instance=instance, run_id=run_id,
        tags={**tags, **run_worker().tag(run_id), **origin_tags(job)}, raise_on_error=False)
    attach_origin(instance, run_id, job)
    return result


T = TypeVar("T")


def stop_on_signals(work: Callable[[], T], instance: DagsterInstance) -> T:
    """Return `work()`, run in a thread, or exit on SIGTERM/SIGINT within moments, with the run marked failed.

    On the main thread, `execute_in_process` turns these signals into a flag that only a step's own code acts on:
    a step waiting for a pool slot never looks at it (the run then ignores SIGTERM for good), and a step's
    RetryPolicy turns the interrupt into a retry. In a thread it installs no handlers, so this process's handler
    runs at once: it marks this process's runs failed, frees their pool slots and exits with 128 + signum. The
    work in flight ends as with `kill -9`, which every stage survives (one transaction per write, atomic files).
    """
    value: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            value.append(work())
        except BaseException as exc:  # handed to the main thread, which raises it
            error.append(exc)

    def stop(signum: int, _frame: object) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        deadline = threading.Timer(10, os._exit, (128 + signum,))  # nor a database that does not answer
        deadline.daemon = True
        deadline.start()
        line = f"aperture: stopped by {signal.Signals(signum).name}"
        try:
            if fail_own_runs(instance, f"aperture was stopped by {signal.Signals(signum).name}."):
                line += "; the run was marked failed"
        except Exception as exc:
            line += f"; the run could not be marked failed ({exc}), the next aperture command will"
        finally:
            print(line, file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    worker = threading.Thread(target=target, name="aperture run", daemon=True)
    worker.start()
    try:
        worker.join()  # a signal interrupts the wait and runs `stop` here
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if error:
        raise error[0]
    return value[0]


def failure(result) -> str:
    """The user-facing error of a failed run: the innermost cause's message, first line."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause
            if error is not None:
                line = error.message.strip().splitlines()[0]
                # a Failure's description is the whole message; other errors keep their class name
                return line.split(": ", 1)[-1] if error.cls_name == "Failure" else line
    return f"run {result.run_id} failed"
