"""Runs whose process is gone. `kill -9`, an OOM kill or a power cut ends a run's process without a word to
Dagster: the run stays "started" forever and keeps its `media_server` or `ai_provider` pool slot, so every
later run waits for that pool without end.

Each run therefore names the process that runs it in the `aperture/worker` tag: the CLI sets it when it starts
a run, and a stage's first step sets it on runs the daemon launches (see stage.py). `recover_dead_runs` marks
failed every unfinished run whose process on this machine is gone, and frees the pool slots of runs that are
no longer in progress. `aperture run`, `demo` and `dev` call it first, and the `dead_run_recovery` sensor calls it
in the daemon.
"""

import multiprocessing
import os
import socket
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

WORKER_TAG = "aperture/worker"
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
UNFINISHED = [status for status in DagsterRunStatus if status not in FINISHED]


class Worker(NamedTuple):
    """A process, told apart from a later one that reuses its pid by when it started."""

    machine: str  # host name, and the pid namespace (containers on one host name each have their own pids)
    pid: int
    started: str  # clock ticks after boot; "" where there is no /proc (such a worker is never declared gone)

    def tag(self, run_id: str) -> dict[str, str]:
        """The worker tag of `run_id`; the run id in it tells a run's own tag from one a retry copied."""
        return {WORKER_TAG: f"{self.machine}:{self.pid}:{self.started}:{run_id}"}

    def gone(self) -> bool:
        return bool(self.started) and _started(self.pid) != self.started


def _started(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces); "" if none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return ""


def _machine() -> str:
    namespace = ""
    with suppress(OSError):
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:")  # "pid:[4026531836]"
    return socket.gethostname() + namespace


def run_worker() -> Worker:
    """The process that runs this process's steps: this one, or the run worker that started it as a step process
    (Dagster's multiprocess executor, in runs the daemon launches), which outlives each step."""
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None and parent.pid is not None else os.getpid()
    return Worker(_machine(), pid, _started(pid))


def worker_of(run: DagsterRun) -> Worker | None:
    """The worker the run's own tag names, or None (no tag, a tag copied from the run it retries)."""
    parts = run.tags.get(WORKER_TAG, "").rsplit(":", 3)
    if len(parts) != 4 or parts[3] != run.run_id or not parts[1].isdigit():
        return None
    return Worker(parts[0], int(parts[1]), parts[2])


def tag_run(instance: DagsterInstance, run: DagsterRun) -> None:
    """Name this process's run worker on `run`, unless the run already carries its own tag."""
    if worker_of(run) is None:
        instance.add_run_tags(run.run_id, run_worker().tag(run.run_id))


def recover_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed every unfinished run whose worker on this machine is gone, then free the pool slots of every
    run that is not in progress (finished, failed, canceled or deleted). Returns one line per thing done."""
    done = []
    machine = _machine()
    for run in _unfinished(instance):
        worker = worker_of(run)
        if worker is not None and worker.machine == machine and worker.gone():
            instance.report_run_failed(run, f"Marked failed by aperture: its process (pid {worker.pid}) is gone: "
                                            "killed or crashed.")
            done.append(f"run {run.run_id} ({run.job_name}) marked failed: its process (pid {worker.pid}) is gone")
    storage = instance.event_log_storage
    holders = storage.get_concurrency_run_ids() if storage.supports_global_concurrency_limits else set()
    status = {r.dagster_run.run_id: r.dagster_run.status
              for r in instance.get_run_records(RunsFilter(run_ids=list(holders)))} if holders else {}
    for run_id in sorted(holders):
        state = status.get(run_id)
        if state is None or state in FINISHED:
            storage.free_concurrency_slots_for_run(run_id)
            done.append(f"freed the pool slots of run {run_id} ({state.value.lower() if state else 'deleted'})")
    return done


def fail_own_runs(instance: DagsterInstance, message: str) -> list[str]:
    """Mark failed the unfinished runs this process runs and free their pool slots (it is about to exit);
    returns their ids."""
    me = run_worker()
    runs = [run for run in _unfinished(instance) if worker_of(run) == me]
    for run in runs:
        instance.report_run_failed(run, message)
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return [run.run_id for run in runs]


def _unfinished(instance: DagsterInstance) -> list[DagsterRun]:
    return [record.dagster_run for record in instance.get_run_records(RunsFilter(statuses=UNFINISHED))]
