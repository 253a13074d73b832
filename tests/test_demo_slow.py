"""`make demo` is one of the README's two set-up commands: it must succeed, and succeed again on the same data
dir (each demo serves a new sample server, so the libraries the last one made are gone with it)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

APERTURE = str(Path(sys.executable).with_name("aperture"))


@pytest.mark.slow
def test_the_demo_runs_twice_on_one_data_dir_slow(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APERTURE_", "DAGSTER_", "OPENAI_"))}
    env["APERTURE_DATA_DIR"] = str(tmp_path / "data")
    try:
        for attempt in (1, 2):
            done = subprocess.run([APERTURE, "demo"], env=env, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=600)
            assert done.returncode == 0, (attempt, done.stdout[-3000:], done.stderr[-3000:])
            assert "| sync_series_libraries | ok |" in done.stdout, (attempt, done.stdout[-3000:])
    finally:
        subprocess.run([APERTURE, "db", "stop"], env=env, cwd=tmp_path, capture_output=True, timeout=120)
