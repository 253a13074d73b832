"""`make demo` is one of the README's two set-up commands: it must succeed, and succeed again on the same data
dir (each demo serves a new sample server, so the libraries the last one made are gone with it). What it prints
is what a new user meets: a line per stage as it starts and ends, no Dagster event lines unless -v, only the
summary with -q; and the users and their picks can be looked up by name afterwards."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

APERTURE = str(Path(sys.executable).with_name("aperture"))
ASSETS = ("series_catalog", "series_embeddings", "series_watch_history", "series_recommendations",
          "recommendation_quality", "series_library")
DAGSTER_EVENT = re.compile(r" - dagster - (DEBUG|INFO) - ")


def aperture(env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([APERTURE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_demo_runs_twice_on_one_data_dir_and_its_picks_can_be_looked_up_slow(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APERTURE_", "DAGSTER_", "OPENAI_"))}
    env["APERTURE_DATA_DIR"] = str(tmp_path / "data")
    try:
        first = aperture(env, tmp_path, "demo")
        assert first.returncode == 0, (first.stdout[-3000:], first.stderr[-3000:])
        out = first.stdout
        assert not DAGSTER_EVENT.search(out + first.stderr), out[:3000]
        for asset in ASSETS:  # a line when it starts, one when it ends saying what it did
            assert f"aperture: {asset}: started\n" in out, asset
            assert re.search(rf"^aperture: {asset}: .+, \d+\.\d s$", out, re.MULTILINE), (asset, out[:3000])
        assert re.search(r"^aperture: series_catalog: 60 series, [\d,]+ episodes, [\d,]+ rows changed", out,
                         re.MULTILINE)
        assert "| Stage | Result | Seconds | Changed | Unchanged | Dagster run |" in out
        alice = next(line for line in out.splitlines() if line.startswith("| alice |"))
        assert "| all |" in alice and "users/alice [" in alice  # all picks new, and where her library is

        made = json.loads(aperture(env, tmp_path, "picks", "alice", "--json").stdout)["computed_at"]
        second = aperture(env, tmp_path, "demo", "-q")
        assert second.returncode == 0, (second.stdout[-3000:], second.stderr[-3000:])
        assert "| sync_series_libraries | ok |" in second.stdout
        assert ": started" not in second.stdout and not DAGSTER_EVENT.search(second.stdout + second.stderr)
        assert "| sync_series | ok |" in second.stdout and "| 0 rows |" in second.stdout  # nothing changed
        assert re.search(r"^\| generate_series_recommendations \| ok \| [\d.]+ \| 0 users \|", second.stdout,
                         re.MULTILINE), second.stdout  # so every user's picks stand, none new
        assert "| 0 |" in next(line for line in second.stdout.splitlines() if line.startswith("| alice |"))

        verbose = aperture(env, tmp_path, "demo", "-v", "--select", "sync_series")
        assert verbose.returncode == 0 and " - dagster - DEBUG - " in verbose.stdout + verbose.stderr

        users = aperture(env, tmp_path, "users")
        assert users.returncode == 0, users.stderr
        assert re.search(r"^\| alice \| [0-9a-f]{32} \| alice \| yes \|", users.stdout, re.MULTILINE), users.stdout
        assert re.search(r"^\| frank \| [0-9a-f]{32} \| frank \| disabled \|", users.stdout, re.MULTILINE)

        shown = aperture(env, tmp_path, "picks", "ALICE", "--json")
        assert shown.returncode == 0, shown.stderr
        picks = json.loads(shown.stdout)
        assert picks["user"] == "alice" and picks["partition"] == "alice"
        assert picks["computed_at"] == made  # nothing changed, not even the picks libraries the first run made
        assert [p["rank"] for p in picks["picks"]] == list(range(1, len(picks["picks"]) + 1)) and picks["picks"]
        assert all(p["components"] and p["name"] for p in picks["picks"])
        why = aperture(env, tmp_path, "picks", "alice", "--why")
        assert why.returncode == 0 and f"  1. {picks['picks'][0]['name']}" in why.stdout
        assert "because you watched" in why.stdout, why.stdout

        typo = aperture(env, tmp_path, "picks", "alcie")
        assert typo.returncode == 2 and "close: alice" in typo.stderr, typo.stderr
        assert aperture(env, tmp_path, "--version").stdout.startswith("aperture ")
    finally:
        subprocess.run([APERTURE, "db", "stop"], env=env, cwd=tmp_path, capture_output=True, timeout=120)
