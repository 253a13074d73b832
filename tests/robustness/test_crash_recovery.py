"""A killed run never wedges the next one: `kill -9` of `aperture run` at any point leaves a run "started" with its
pool slot held, and the next `aperture run` marks it failed, frees the slot and converges to a clean run's state.
SIGTERM and SIGINT stop a run within moments, even one waiting for a pool slot."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
    SkipReason,
    build_reconstructable_job,
    build_sensor_context,
    execute_job,
    instance_for_test,
    job,
    op,
)

from aperture_assets.defs.pipeline.recovery import dead_run_recovery
from aperture_assets.wiring.recovery import WORKER_TAG, Worker, recover_dead_runs, run_worker, worker_of
from aperture_assets.wiring.stage import stage_body
from aperture_resources.database import DatabaseResource, sqlalchemy_url
from tests.robustness.helpers import diff, server_libraries, snapshot
from tests.robustness.test_concurrency import APERTURE, cli_env

POOL = "media_server"


@contextmanager
def dagster_instance(database: DatabaseResource) -> Iterator[DagsterInstance]:
    """A Dagster instance on the same storage `aperture` uses when APERTURE_DATABASE_URL is this database."""
    storage = {"postgres": {"postgres_url": sqlalchemy_url(database.url, "psycopg2")}}
    with instance_for_test(overrides={"storage": storage}) as instance:
        yield instance


def start_run(world, tmp_path) -> subprocess.Popen:
    env = {**cli_env(world, tmp_path / "data"), "APERTURE_DATABASE_URL": world.database.url}
    return subprocess.Popen([APERTURE, "run"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"aperture run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.01)


def finish(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """The process's output once it exits; killed (and the test failed) if it takes longer than `timeout`."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"aperture run still running after {timeout} s: {proc.communicate()}")


def requests_to(server, method: str, prefix: str) -> int:
    return sum(1 for r in list(server.requests) if r.method == method and r.path.startswith(prefix))


def without_picks_libraries(state: dict, data: Path) -> dict:
    """The state without the picks libraries' rows in `libraries`: the catalog records every library on the server,
    so a run after one that created picks libraries lists them, as any second run does."""
    mine = str(data / "libraries") + "/"
    return {**state, "libraries": [row for row in state["libraries"]
                                      if not any(str(location).startswith(mine) for location in row[3])]}


# (what the killed run was doing, the request that shows it is doing it, how many of them to wait for)
KILL_POINTS = {
    "reading the catalog": ("GET", "/Items", 1),
    "writing watch history": ("GET", "/UserItems/Resume", 4),
    "creating the libraries": ("POST", "/Library/VirtualFolders", 3),
    "refreshing the libraries": ("POST", "/Items/", 1),  # /Items/<id>/Refresh
}


@pytest.mark.slow
@pytest.mark.parametrize("point", KILL_POINTS)
def test_the_run_after_a_kill_9_recovers_and_converges_slow(point, make_world, clean_run, tmp_path):
    """Before: the next run waited for the dead run's media_server slot forever."""
    world = make_world(latency_ms=10)  # the kill lands while the run is still at `point`
    world.server.record = True
    method, prefix, count = KILL_POINTS[point]
    killed = start_run(world, tmp_path)
    wait_until(lambda: requests_to(world.server, method, prefix) >= count, killed, point)
    killed.kill()
    killed.communicate(timeout=10)
    with dagster_instance(world.database) as instance:
        (dead,) = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        (slot,) = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots  # each point reads the server
        assert slot.run_id == dead.run_id

        again = start_run(world, tmp_path)
        out, err = finish(again, timeout=90)
        assert again.returncode == 0, (out, err)
        assert f"run {dead.run_id} (full_refresh) marked failed: its process (pid {killed.pid}) is gone" in out
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_run_ids() == set()
    assert server_libraries(world.server) == clean_run.libraries  # one library per user, no "...2" copies
    assert diff(without_picks_libraries(snapshot(world.database), tmp_path / "data"), clean_run.snapshot) == {}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_run_waiting_for_a_pool_slot(signum, make_world, tmp_path):
    """Before: the step waiting for the slot ignored both signals for good. The slot here is held by another
    run that is in progress (so recovery leaves it alone)."""
    world = make_world()
    with dagster_instance(world.database) as instance:
        storage = instance.event_log_storage
        holder = DagsterRun(job_name="holder", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED)
        instance.add_run(holder)
        storage.set_concurrency_slots(POOL, 1)
        assert storage.claim_concurrency_slot(POOL, holder.run_id, "holder_step").is_claimed

        proc = start_run(world, tmp_path)
        wait_until(lambda: len(storage.get_concurrency_run_ids()) == 2, proc, "a step waiting for the pool")
        sent = time.monotonic()
        proc.send_signal(signum)
        out, err = finish(proc, timeout=30)
        seconds = time.monotonic() - sent
        assert proc.returncode == 128 + signum, (out, err)
        assert seconds < 10
        assert f"aperture: stopped by {signal.Signals(signum).name}; the run was marked failed" in err
        (run,) = instance.get_runs(RunsFilter(job_name="full_refresh"))
        assert run.status == DagsterRunStatus.FAILURE
        assert storage.get_concurrency_run_ids() == {holder.run_id}  # its waiting step is gone, the holder kept
        assert world.server.request_count == 1  # the users read, then nothing: the catalog never got the slot


def test_recovery_fails_only_runs_whose_process_is_gone(database):
    """The sensor runs beside live runs: only a run whose own tag names a process on this machine that is gone
    (or whose pid a later process reuses) is failed, and only slots of runs no longer in progress are freed."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    me = run_worker()
    workers = {
        "dead": Worker(me.machine, int(gone.stdout), me.started),
        "pid reused": Worker(me.machine, me.pid, str(int(me.started) + 1)),  # same pid, a later process
        "alive": me,
        "elsewhere": Worker("another-host", int(gone.stdout), me.started),
    }
    with dagster_instance(database) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(POOL, 10)
        runs = {}
        for name, worker in workers.items():
            run_id = str(uuid.uuid4())
            runs[name] = DagsterRun(job_name=name.replace(" ", "_"), run_id=run_id, status=DagsterRunStatus.STARTED,
                                    tags=worker.tag(run_id))
        dead_tag = runs["dead"].tags[WORKER_TAG]
        runs["retry of dead"] = DagsterRun(job_name="retry", run_id=str(uuid.uuid4()),  # a retry copies the tags
                                           status=DagsterRunStatus.STARTED, tags={WORKER_TAG: dead_tag})
        runs["finished"] = DagsterRun(job_name="finished", run_id=str(uuid.uuid4()), status=DagsterRunStatus.SUCCESS)
        for run in runs.values():
            instance.add_run(run)
            storage.claim_concurrency_slot(POOL, run.run_id, "step")
        storage.claim_concurrency_slot(POOL, "deleted-run", "step")
        assert worker_of(runs["retry of dead"]) is None and worker_of(runs["alive"]) == me

        result = dead_run_recovery(build_sensor_context(instance=instance))

        assert isinstance(result, SkipReason)
        status = {name: instance.get_run_by_id(run.run_id).status for name, run in runs.items()}
        assert status == {"dead": DagsterRunStatus.FAILURE, "pid reused": DagsterRunStatus.FAILURE,
                          "alive": DagsterRunStatus.STARTED, "elsewhere": DagsterRunStatus.STARTED,
                          "retry of dead": DagsterRunStatus.STARTED, "finished": DagsterRunStatus.SUCCESS}
        assert f"its process (pid {gone.stdout.strip()}) is gone" in result.skip_message
        holders = {runs[name].run_id for name in ("alive", "elsewhere", "retry of dead")}
        assert storage.get_concurrency_run_ids() == holders
        assert recover_dead_runs(instance) == []  # nothing left to do


@op
@stage_body
def first_step(context) -> int:
    return os.getpid()


@op
@stage_body
def second_step(context, first: int) -> None:
    assert os.getpid() != first  # each step ran in a process of its own


@job
def two_step_processes():
    second_step(first_step())


def two_step_job():
    """The job, by a module name the step processes can import (pytest imports this file as `robustness.…`)."""
    return two_step_processes


def test_a_daemon_style_run_names_its_run_worker_not_a_step_process(database):
    """Runs the daemon launches execute each step in a child process (the multiprocess executor): the tag must
    name the run worker, which outlives every step, or the run would look dead between steps."""
    with dagster_instance(database) as instance:
        reconstructable = build_reconstructable_job("tests.robustness.test_crash_recovery", "two_step_job")
        result = execute_job(reconstructable, instance=instance)
        assert result.success
        run = instance.get_run_by_id(result.run_id)
    assert worker_of(run) == run_worker()  # this process ran the run; its steps ran in children


def session_processes(session: int) -> list[int]:
    """The pids still alive in a session (the supervisor and everything `dagster dev` started)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def workspace_loaded(port: int) -> bool:
    """True once the UI answers and lists aperture's code location (so its code server is running)."""
    query = json.dumps({"query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query.encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return bool(json.load(answer)["data"]["repositoriesOrError"].get("nodes"))
    except (OSError, ValueError, KeyError, TypeError):
        return False


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_aperture_dev_stops_within_seconds_on_a_signal_slow(signum, make_world, tmp_path):
    """Before: `dagster dev` exited but its code server held the terminal for its 45 s heartbeat timeout."""
    world = make_world()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**cli_env(world, tmp_path / "data"), "APERTURE_DATABASE_URL": world.database.url}
    with open(tmp_path / "dev.log", "w+") as log:
        proc = subprocess.Popen([APERTURE, "dev", "--port", str(port)], env=env, cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: workspace_loaded(port), proc, "UI with aperture's code location", timeout=180)
            assert len(session_processes(proc.pid)) >= 3  # aperture, dagster dev and its children
            sent = time.monotonic()
            proc.send_signal(signum)
            proc.wait(timeout=30)
            seconds = time.monotonic() - sent
            deadline = time.monotonic() + 5
            while session_processes(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            left = session_processes(proc.pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        log.seek(0)
        output = log.read()
    assert proc.returncode == 128 + signum, output[-2000:]
    assert seconds < 10, (seconds, output[-2000:])
    assert not left, f"processes left running: {left}"
