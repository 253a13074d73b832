"""The one configuration model: every bad value stops `aperture doctor` and `aperture run` before any stage,
with one sentence naming the variable (no traceback); resources and schedules read the same values."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster
import pytest

from aperture_assets.cli.main import main
from aperture_assets.wiring.resources import build_resources
from aperture_resources.settings import Settings, env_example, env_name, load_settings

ROOT = Path(__file__).resolve().parents[1]
SERVER = {"APERTURE_MEDIA_SERVER_URL": "http://127.0.0.1:9", "APERTURE_MEDIA_SERVER_API_KEY": "k"}
WHOLE_NUMBER = "must be a whole number from 1 to"

# (variables, what the one sentence says): the values named in the architecture issue, and more
BAD = [
    ({"APERTURE_RECOMMENDATIONS_PER_USER": "abc"},
     f"APERTURE_RECOMMENDATIONS_PER_USER {WHOLE_NUMBER} 200 (got 'abc')."),
    ({"APERTURE_RECOMMENDATIONS_PER_USER": "500"},
     f"APERTURE_RECOMMENDATIONS_PER_USER {WHOLE_NUMBER} 200 (got '500')."),
    ({"APERTURE_MEDIA_SERVER_CONCURRENCY": "abc"}, f"APERTURE_MEDIA_SERVER_CONCURRENCY {WHOLE_NUMBER} 32 (got 'abc')."),
    ({"APERTURE_MEDIA_SERVER_CONCURRENCY": "0"}, f"APERTURE_MEDIA_SERVER_CONCURRENCY {WHOLE_NUMBER} 32 (got '0')."),
    ({"APERTURE_EXPLANATIONS": "maybe"}, "APERTURE_EXPLANATIONS must be 'on' or 'off' (got 'maybe')."),
    ({"APERTURE_RUN_RETENTION_DAYS": "x"}, "APERTURE_RUN_RETENTION_DAYS must be 0 (keep every run) or a number of"),
    ({"APERTURE_RUN_RETENTION_DAYS": "-1"}, "APERTURE_RUN_RETENTION_DAYS must be 0 (keep every run) or a number of"),
    ({"APERTURE_MASS_REMOVAL_THRESHOLD": "2"}, "APERTURE_MASS_REMOVAL_THRESHOLD must be a share from 0 to 1"),
    ({"APERTURE_LIBRARY_MODE": "strm"}, "APERTURE_LIBRARY_MODE=strm needs the API key inside every .strm URL"),
    ({"APERTURE_LIBRARY_MODE": "strm", "APERTURE_MEDIA_SERVER_TYPE": "emby"},
     "APERTURE_LIBRARY_MODE=strm needs the API key inside every .strm URL"),
    ({"APERTURE_LIBRARY_MODE": "copy"}, "APERTURE_LIBRARY_MODE must be 'symlink' or 'strm' (got 'copy')."),
    ({"APERTURE_EMBEDDING_PROVIDER": "openai"}, "OPENAI_API_KEY is not set"),
    ({"APERTURE_EMBEDDING_PROVIDER": "claude"}, "APERTURE_EMBEDDING_PROVIDER must be 'local', 'openai' or 'ollama'"),
    ({"APERTURE_EMBEDDING_DIMENSIONS": "768"}, "APERTURE_EMBEDDING_DIMENSIONS must be empty with the local provider"),
    ({"APERTURE_TIMEZONE": "Mars/Base"},
     "APERTURE_TIMEZONE must be an IANA time zone such as Europe/Berlin (got 'Mars/Base')."),
    ({"APERTURE_MEDIA_SERVER_TYPE": "plex"}, "APERTURE_MEDIA_SERVER_TYPE must be 'jellyfin' or 'emby' (got 'plex')."),
    ({"APERTURE_MEDIA_SERVER_URL": "ftp://server"}, "APERTURE_MEDIA_SERVER_URL must be an http:// or https:// URL"),
    ({"APERTURE_MEDIA_SERVER_URL": ""}, "APERTURE_MEDIA_SERVER_URL is not set"),
    ({"APERTURE_LIBRARY_NAME": "{user}'s picks"}, "APERTURE_LIBRARY_NAME must be a name that may use {name}"),
    ({"APERTURE_LIBRARY_STRM_API_KEY": "perhaps"}, "APERTURE_LIBRARY_STRM_API_KEY must be 'on' or 'off'"),
    ({"OLLAMA_HOST": "localhost:11434"}, "OLLAMA_HOST must be an http:// or https:// URL"),
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No APERTURE_/provider variable from outside, and a working directory without a .env. main() loads a
    .env and exports the resolved database into the process: the environment is restored afterwards."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("APERTURE_", "OPENAI_", "OLLAMA_")) or name == "DAGSTER_HOME":
            del os.environ[name]
    monkeypatch.chdir(tmp_path)
    os.environ["APERTURE_DATA_DIR"] = str(tmp_path / "data")
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize(("variables", "sentence"), BAD,
                         ids=[" ".join(f"{k}={v}" for k, v in bad[0].items()) for bad in BAD])
@pytest.mark.parametrize("command", ["doctor", "run"])
def test_a_bad_value_is_one_sentence_before_any_stage(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture, command: str, variables: dict,
                                                      sentence: str) -> None:
    for name, value in {**SERVER, **variables}.items():
        monkeypatch.setenv(name, value)
    code = main([command])
    out, err = capsys.readouterr()
    assert code != 0
    assert sentence in out + err
    assert "Traceback" not in out + err
    if command == "run" or "is not set" not in sentence:  # doctor goes on to its other checks for a missing one
        assert not (clean_env / "data").exists()  # stopped before the database, Dagster or any stage


def test_every_variable_is_documented_with_its_meaning() -> None:
    readme = (ROOT / "README.md").read_text()
    assert (ROOT / ".env.example").read_text() == env_example(), "regenerate: python -m aperture_resources.settings"
    for field, info in Settings.model_fields.items():
        name = env_name(field)
        assert info.json_schema_extra and info.json_schema_extra["meaning"], name
        assert f"`{name}`" in readme, f"{name} is missing from the README's configuration table"


def test_empty_values_mean_the_defaults(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APERTURE_EMBEDDING_DIMENSIONS", "APERTURE_LIBRARY_MODE", "APERTURE_RECOMMENDATIONS_PER_USER"):
        monkeypatch.setenv(name, "")
    settings = load_settings()
    assert (settings.embedding_dimensions, settings.library_mode, settings.recommendations_per_user) == \
        (None, "symlink", 12)


def test_help_never_reads_the_settings() -> None:
    env = {**os.environ, "APERTURE_TIMEZONE": "Mars/Base", "APERTURE_RECOMMENDATIONS_PER_USER": "abc"}
    done = subprocess.run([sys.executable, "-m", "aperture_assets.cli", "--help"], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "usage: aperture" in done.stdout


def test_importing_the_code_location_reads_no_environment() -> None:
    env = {**os.environ, "APERTURE_TIMEZONE": "Mars/Base"}
    imported = subprocess.run([sys.executable, "-c", "import aperture_assets.definitions"], env=env,
                              capture_output=True, text=True, cwd=ROOT)
    assert imported.returncode == 0, imported.stderr
    loaded = subprocess.run([sys.executable, "-c", "from aperture_assets.definitions import defs; defs()"], env=env,
                            capture_output=True, text=True, cwd=ROOT)
    assert loaded.returncode != 0
    assert "APERTURE_TIMEZONE must be an IANA time zone" in loaded.stderr


def resolved(settings: Settings) -> dict:
    with dagster.build_resources(build_resources(settings)) as res:
        return {"concurrency": res.media_server.concurrency, "picks": res.pipeline.recommendations_per_user,
                "threshold": res.pipeline.mass_removal_threshold, "root": res.library.local_root(),
                "server_root": res.library.media_server_root(), "key": res.media_server.api_key,
                "catalog_skips": res.media_server.picks_root}


def test_resources_read_the_same_model(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APERTURE_MEDIA_SERVER_API_KEY", "from-env")
    monkeypatch.setenv("APERTURE_MEDIA_SERVER_CONCURRENCY", "2")
    monkeypatch.setenv("APERTURE_MASS_REMOVAL_THRESHOLD", "0.5")
    monkeypatch.setenv("APERTURE_LIBRARY_ROOT", str(clean_env / "picks"))
    monkeypatch.setenv("APERTURE_MEDIA_SERVER_LIBRARY_ROOT", "/mnt/picks")
    settings = load_settings()
    assert build_resources(settings)["media_server"].api_key == dagster.EnvVar("APERTURE_MEDIA_SERVER_API_KEY")
    assert resolved(settings) == {"concurrency": 2, "picks": 12, "threshold": 0.5, "root": clean_env / "picks",
                                  "server_root": "/mnt/picks", "key": "from-env", "catalog_skips": "/mnt/picks"}
    monkeypatch.delenv("APERTURE_MEDIA_SERVER_LIBRARY_ROOT")
    assert resolved(load_settings())["server_root"] == str(clean_env / "picks")
    assert resolved(load_settings())["catalog_skips"] == str(clean_env / "picks")


def test_schedules_run_in_the_configured_time_zone(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aperture_assets.definitions import defs

    monkeypatch.setenv("APERTURE_TIMEZONE", "Europe/Berlin")
    zones = {schedule.name: schedule.execution_timezone for schedule in defs().schedules}
    assert len(zones) == 6 and set(zones.values()) == {"Europe/Berlin"}


def test_env_example_with_only_the_required_lines_passes_doctor(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture, sample_server,
                                                                pg_server_url: str) -> None:
    filled = {"APERTURE_MEDIA_SERVER_URL": sample_server.url, "APERTURE_MEDIA_SERVER_API_KEY": "test-key",
              "APERTURE_DATABASE_URL": pg_server_url}
    lines = [next((f"{k}={v}" for k, v in filled.items() if line.startswith(f"{k}=")), line)
             for line in (ROOT / ".env.example").read_text().splitlines()]
    (clean_env / ".env").write_text("\n".join(lines) + "\n")
    monkeypatch.delenv("APERTURE_DATA_DIR")
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("ok   ") == 5 and "FAIL" not in out
    assert "users get picks" in out
    assert "AI provider: local:all-MiniLM-L6-v2 answers with 384 dimensions" in out


def test_users_that_do_not_exist_are_named_with_close_matches(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture, sample_server,
                                                              pg_server_url: str) -> None:
    monkeypatch.setenv("APERTURE_MEDIA_SERVER_URL", sample_server.url)
    monkeypatch.setenv("APERTURE_MEDIA_SERVER_API_KEY", "test-key")
    monkeypatch.setenv("APERTURE_DATABASE_URL", pg_server_url)
    monkeypatch.setenv("APERTURE_USERS", "alice,alicee,nobody-at-all")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL media server: APERTURE_USERS names no user on the media server: 'alicee' (did you mean alice" in out
    assert "'nobody-at-all'." in out
