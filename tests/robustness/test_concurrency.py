"""Two `aperture run`s at once on one data dir: one runs, the other exits with a clear message; the state
equals a single clean run and the server holds one library per user."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import instance_for_test

from aperture_assets.cli.run import RunInProgressError, run_lock, run_stages
from aperture_resources.database import DatabaseResource
from tests.robustness.helpers import AI_KEY, MEDIA_KEY, diff, server_libraries, snapshot

APERTURE = str(Path(sys.executable).with_name("aperture"))


def cli_env(world, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APERTURE_", "DAGSTER_", "OPENAI_"))}
    return {**env, "APERTURE_MEDIA_SERVER_TYPE": "jellyfin", "APERTURE_MEDIA_SERVER_URL": world.server.url,
            "APERTURE_MEDIA_SERVER_API_KEY": MEDIA_KEY, "APERTURE_DATA_DIR": str(data),
            "APERTURE_EMBEDDING_PROVIDER": "openai", "OPENAI_BASE_URL": world.ai.openai_base_url,
            "OPENAI_API_KEY": AI_KEY, "APERTURE_EMBEDDING_MODEL": "text-embedding-3-small",
            "APERTURE_EMBEDDING_DIMENSIONS": "256"}


@pytest.mark.slow
def test_two_cli_runs_at_once_slow(make_world, clean_run, tmp_path):
    world = make_world(latency_ms=15)  # long enough runs to overlap
    data = tmp_path / "data"
    env = cli_env(world, data)
    # The embedded PostgreSQL is created once up front (`aperture db url`), as any first command would.
    url = subprocess.run([APERTURE, "db", "url"], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120).stdout.strip()
    try:
        procs = [subprocess.Popen([APERTURE, "run"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes == [0, 1], outs
        loser = next(out for p, out in zip(procs, outs, strict=True) if p.returncode == 1)
        assert "another aperture run is in progress (started " in loser[1], loser
        assert server_libraries(world.server) == clean_run.libraries  # one library per user, no "...2" copies
        assert diff(snapshot(DatabaseResource(url=url)), clean_run.snapshot) == {}

        again = subprocess.run([APERTURE, "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr  # the lock went away with the winner
        assert server_libraries(world.server) == clean_run.libraries
    finally:
        subprocess.run([APERTURE, "db", "stop"], env=env, cwd=tmp_path, capture_output=True, timeout=60)


def test_a_run_while_another_holds_the_lock_exits_clearly(make_world):
    from dagster import Definitions

    from aperture_assets.defs.catalog.jobs import sync_series
    from tests.robustness.helpers import ASSETS

    world = make_world()
    defs = Definitions(assets=list(ASSETS.values()), jobs=[sync_series], resources=world.resources())
    with instance_for_test() as instance, run_lock(world.database.url):
        with pytest.raises(RunInProgressError, match=r"another aperture run is in progress \(started \d{4}-"):
            run_stages(defs, instance, echo=lambda line: None)
        assert world.server.request_count == 0  # refused before touching the server
    with instance_for_test() as instance:  # released: the next run goes ahead
        assert [r.success for r in run_stages(defs, instance, ["sync_series"], echo=lambda line: None)] == [True]
