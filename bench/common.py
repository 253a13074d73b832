"""Shared benchmark set-up: the synthetic library on the sample server (its own process), a throwaway
embedded PostgreSQL holding both the product's tables and Dagster's storage (as `aperture run` uses it), and
running assets (partitioned ones over every user in one run) through Dagster."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from dagster import DagsterInstance, instance_for_test, materialize

from aperture_assets.wiring.dagster_internals import partition_range_tags
from aperture_assets.wiring.partitions import users_partitions
from aperture_resources import database as db
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import SERVERS
from aperture_resources.pipeline_config import PipelineConfig

API_KEY = "bench"


class ServerProcess:
    """The sample server in its own process, as a real media server would be; `seed`: the synthetic generator's."""

    def __init__(self, series: int, episodes: int, users: int, latency_ms: float, mode: str = "jellyfin",
                 seed: int = 0) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.mode = mode
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aperture_dev.sample_server", "--mode", mode, "--port", str(port),
             "--api-key", API_KEY, "--latency-ms", str(latency_ms), "--synthetic", f"{series},{episodes},{users}",
             "--seed", str(seed)],
            stdout=subprocess.PIPE, text=True)
        if "server at" not in (self.process.stdout.readline() if self.process.stdout else ""):
            raise RuntimeError("the sample server did not start")

    @property
    def request_count(self) -> int:
        return httpx.get(f"{self.url}/_sample/stats").json()["requests"]

    def reset_counters(self) -> None:
        httpx.post(f"{self.url}/_sample/reset")

    def user_ids(self) -> list[str]:
        """Enabled users, read through the product's own client (each flavour's accepted credentials)."""
        with SERVERS[self.mode](url=self.url, api_key=API_KEY).client() as client:
            return sorted(str(u["Id"]) for u in client.users() if not u["Policy"]["IsDisabled"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class Bench:
    server: ServerProcess
    database: DatabaseResource
    instance: DagsterInstance
    user_ids: list[str]
    resources: dict

    def run(self, assets: list, partitioned: bool = False, **resources) -> tuple[float, dict]:
        """Materialize `assets` (all user partitions in one run if `partitioned`); (seconds, metadata)."""
        tags = {}
        if partitioned:
            tags = partition_range_tags(self.user_ids[0], self.user_ids[-1])
        started = time.perf_counter()
        result = materialize(assets, resources={**self.resources, **resources}, instance=self.instance, tags=tags)
        seconds = time.perf_counter() - started
        events = result.get_asset_materialization_events()
        return seconds, {k: v.value for k, v in events[0].materialization.metadata.items()} if events else {}


@contextmanager
def synthetic_bench(series: int = 2000, episodes: int = 100_000, users: int = 50,
                    latency_ms: float = 20, mode: str = "jellyfin", seed: int = 0) -> Iterator[Bench]:
    server = ServerProcess(series, episodes, users, latency_ms, mode, seed)
    root = Path(tempfile.mkdtemp(prefix="aperture-bench-", dir="/tmp"))
    try:
        url = db.start_embedded(root, stop_on_exit=True)
        database = DatabaseResource(url=db.with_database(url, db.APP_DATABASE))
        with database.connect():
            pass  # apply migrations outside any timed section
        user_ids = server.user_ids()
        resources = {"media_server": SERVERS[mode](url=server.url, api_key=API_KEY),
                     "database": database, "pipeline": PipelineConfig()}
        storage = {"postgres": {"postgres_url": db.sqlalchemy_url(db.with_database(url, db.DAGSTER_DATABASE),
                                                                    "psycopg2")}}
        with instance_for_test(overrides={"storage": storage}) as instance:
            instance.add_dynamic_partitions(users_partitions.name, user_ids)
            yield Bench(server, database, instance, user_ids, resources)
    finally:
        server.stop()
        db.stop_embedded(root)
        shutil.rmtree(root, ignore_errors=True)
