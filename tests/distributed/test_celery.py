"""The per-user stages fanned out over two real Celery workers (dagster-celery's CeleryRunLauncher, a local
Redis broker) give exactly what one process gives: the same rows, the same files, the same server libraries
and the same library visibility for every user.

How the work spreads: the instance is deploy/celery/dagster.yaml (runs launched as Celery tasks); each per-user
stage is started as one run per group of users (a partition range), and each worker (one task at a time) takes
whichever run is next. Which worker ran a run is read from the run's `aperture/worker` tag (the process that
ran its steps), traced up to the worker we started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import psycopg
import pytest
from dagster import DagsterInstance, DagsterRunStatus, build_resources, instance_for_test, materialize

from aperture_assets.wiring.dagster_internals import partition_range_tags
from aperture_assets.wiring.partitions import apply_user_partitions, users_partitions
from aperture_assets.wiring.recovery import worker_of
from aperture_resources.database import sqlalchemy_url, with_database
from tests.conftest import new_database
from tests.robustness.helpers import (
    AI_KEY,
    ASSETS,
    MEDIA_KEY,
    diff,
    fake_ai,
    library_tree,
    server_libraries,
    snapshot,
    start_server,
)

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
CELERY_DIR = ROOT / "deploy" / "celery"
DAGSTER_CELERY = str(Path(sys.executable).with_name("dagster-celery"))
REDIS = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
JOBS = {"history": "sync_series_watch_history", "recommendations": "generate_series_recommendations",
        "library": "sync_series_libraries"}
USERS_PER_RUN = 3  # the bundled sample's 11 users make 4 runs per stage: enough to keep two workers busy
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}  # one step per run: no step subprocess needed
DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A throwaway Redis (Debian's redis-server) on a free port, no persistence."""
    if REDIS is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; .ci/run installs it)")
    port = free_port()
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def settings_env(server, ai, database_url: str, root: Path, data: Path) -> dict[str, str]:
    """The APERTURE_* environment of one set-up (what a worker machine's .env would hold)."""
    return {"APERTURE_MEDIA_SERVER_TYPE": "jellyfin", "APERTURE_MEDIA_SERVER_URL": server.url,
            "APERTURE_MEDIA_SERVER_API_KEY": MEDIA_KEY, "APERTURE_DATABASE_URL": database_url,
            "APERTURE_DATA_DIR": str(data), "APERTURE_LIBRARY_ROOT": str(root),
            "APERTURE_EMBEDDING_PROVIDER": "openai", "OPENAI_BASE_URL": ai.openai_base_url,
            "OPENAI_API_KEY": AI_KEY, "APERTURE_EMBEDDING_MODEL": "text-embedding-3-small",
            "APERTURE_EMBEDDING_DIMENSIONS": "256"}


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """`env` as the whole APERTURE_/DAGSTER_/OPENAI_ environment of this process for the block."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APERTURE_", "DAGSTER_", "OPENAI_"))}
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        yield


def resources_from_settings() -> dict:
    from aperture_assets.wiring.resources import build_resources
    from aperture_resources.settings import load_settings

    return build_resources(load_settings())


def user_keys(instance: DagsterInstance, resources: dict) -> list[str]:
    with build_resources(resources) as res:  # resolves the EnvVars the settings' secrets arrive as
        enabled = set(apply_user_partitions(instance, res.media_server, res.database, res.pipeline))
    return [k for k in instance.get_dynamic_partitions(users_partitions.name) if k in enabled]


def in_process(instance: DagsterInstance, stages: tuple[str, ...], keys: list[str]) -> None:
    """Each stage as one in-process run (the per-user ones over all users), as `aperture run` does."""
    resources = resources_from_settings()
    for stage in stages:
        tags = partition_range_tags(keys[0], keys[-1]) if stage in JOBS else {}
        assert materialize([ASSETS[stage]], resources=resources, instance=instance, tags=tags).success, stage


def visibility(server) -> dict[str, list[str]]:
    """For every user, the names of the libraries they may see (ports and ids left out)."""
    names = {f["ItemId"]: f["Name"] for f in server.state.folders}
    return {user.name: sorted(names[i] for i in server.state.visible_libraries(uid))
            for uid, user in server.state.users.items()}


def start_worker(name: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`dagster-celery worker start` (one task at a time), in its own process group so it stops with its child."""
    cmd = [DAGSTER_CELERY, "worker", "start", "-A", "dagster_celery.app", "-y", str(CELERY_DIR / "worker.yaml"),
           "-n", name, "--", "--concurrency=1"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # it runs `celery` from the venv
    return subprocess.Popen(cmd, env={**env, "PATH": path}, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for_workers(broker: str, count: int, procs: list[subprocess.Popen], timeout: float = 90) -> None:
    from dagster_celery.make_app import make_app

    app = make_app({"broker": broker, "backend": broker})
    deadline = time.monotonic() + timeout
    while len(app.control.ping(timeout=1.0) or []) < count:
        assert all(p.poll() is None for p in procs), "a Celery worker exited (see worker-*.log)"
        assert time.monotonic() < deadline, "the Celery workers did not answer a ping"


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        chain.append(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return chain


def launch_stage(instance: DagsterInstance, job_name: str, keys: list[str]) -> list[str]:
    """One run per USERS_PER_RUN consecutive users, each launched as a Celery task; returns the run ids."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    recon = ReconstructableRepository.for_module("aperture_assets.definitions", "defs",
                                                 working_directory=str(ROOT)).get_reconstructable_job(job_name)
    job = recon.get_definition()
    run_ids = []
    for i in range(0, len(keys), USERS_PER_RUN):
        group = keys[i:i + USERS_PER_RUN]
        run = instance.create_run_for_job(job, run_config=IN_PROCESS, tags=partition_range_tags(group[0], group[-1]),
                                          job_code_origin=recon.get_python_origin())
        instance.launch_run(run.run_id, workspace=None)
        run_ids.append(run.run_id)
    return run_ids


def wait_for_runs(instance: DagsterInstance, run_ids: list[str], timeout: float = 120) -> list:
    deadline = time.monotonic() + timeout
    while True:
        runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
        if all(run.status in DONE for run in runs):
            return runs
        assert time.monotonic() < deadline, [run.status for run in runs]
        time.sleep(0.3)


def failures(instance: DagsterInstance, run_id: str) -> list[str]:
    return [str(e.dagster_event.event_specific_data) for e in instance.all_logs(run_id)
            if e.dagster_event and e.dagster_event.is_failure]


def test_per_user_stages_on_two_celery_workers_equal_one_process(redis_url, pg_server_url, template_db,
                                                                   sample_data, tmp_path):
    stack = []
    try:
        # The reference: one process, one run per stage.
        ref_db = new_database(pg_server_url, template_db)
        stack.append(ref_db)
        ref = next(ref_db)
        ref_server, ref_ai = start_server(sample_data), fake_ai()
        stack += [ref_server, ref_ai]
        ref_root = tmp_path / "ref-libraries"
        with environment(settings_env(ref_server, ref_ai, ref.url, ref_root, tmp_path / "ref-data")), \
                instance_for_test() as instance:
            keys = user_keys(instance, resources_from_settings())
            in_process(instance, tuple(ASSETS), keys)

        # The same library on another server and database: catalog and embeddings here, the per-user stages
        # on two Celery workers, through a persistent instance made from deploy/celery/dagster.yaml.
        dist_db = new_database(pg_server_url, template_db)
        stack.append(dist_db)
        dist = next(dist_db)
        server, ai = start_server(sample_data), fake_ai()
        stack += [server, ai]
        root = tmp_path / "libraries"
        storage = f"dagster_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{storage}"')
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copyfile(CELERY_DIR / "dagster.yaml", home / "dagster.yaml")
        env = {**settings_env(server, ai, dist.url, root, tmp_path / "data"), "DAGSTER_HOME": str(home),
               "APERTURE_DAGSTER_STORAGE_URL": sqlalchemy_url(with_database(pg_server_url, storage), "psycopg2"),
               "APERTURE_CELERY_BROKER_URL": f"{redis_url}/0", "APERTURE_CELERY_BACKEND_URL": f"{redis_url}/1"}
        with environment(env):
            instance = DagsterInstance.get()  # creates Dagster's tables before any worker opens them
            stack.append(instance)
            workers = [start_worker(f"w{i}@%h", {**os.environ}, tmp_path / f"worker-{i}.log") for i in (1, 2)]
            stack += workers
            keys = user_keys(instance, resources_from_settings())
            in_process(instance, ("catalog", "embeddings"), keys)
            wait_for_workers(env["APERTURE_CELERY_BROKER_URL"], 2, workers)
            ran_on: dict[str, list[int]] = {}
            for stage, job_name in JOBS.items():
                runs = wait_for_runs(instance, launch_stage(instance, job_name, keys))
                for run in runs:
                    assert run.status == DagsterRunStatus.SUCCESS, (stage, failures(instance, run.run_id))
                    chain = ancestors(worker_of(run).pid)
                    ran_on.setdefault(stage, []).append(next(i for i, w in enumerate(workers) if w.pid in chain))
            for stage, job_name in JOBS.items():
                # every partition of the stage was materialized once, by the runs above
                assert instance.get_materialized_partitions(ASSETS[stage].key) >= set(keys), job_name

        print("runs per worker:", {stage: [on.count(0), on.count(1)] for stage, on in ran_on.items()})
        assert {w for on in ran_on.values() for w in on} == {0, 1}, ran_on  # both workers did work
        assert diff(snapshot(dist), snapshot(ref)) == {}
        assert library_tree(root) == library_tree(ref_root)
        assert len(library_tree(root)) > 100
        assert server_libraries(server) == server_libraries(ref_server)
        assert visibility(server) == visibility(ref_server)  # every user sees their own picks library only
    finally:
        for item in reversed(stack):
            if isinstance(item, subprocess.Popen):
                if item.poll() is None:
                    os.killpg(item.pid, signal.SIGTERM)
                try:
                    item.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(item.pid, signal.SIGKILL)
            elif isinstance(item, DagsterInstance):
                item.dispose()
            elif hasattr(item, "stop"):
                item.stop()
            else:
                next(item, None)
