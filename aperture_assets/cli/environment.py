"""What every command sets up first: the database (the embedded PostgreSQL when APERTURE_DATABASE_URL is unset),
Dagster's home and instance on it, and the recovery of runs a killed process left behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from aperture_resources.settings import ConfigError, Settings

if TYPE_CHECKING:
    from dagster import DagsterInstance

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def prepare_environment(settings: Settings) -> dict[str, str]:
    """Resolve the database, write DAGSTER_HOME/dagster.yaml and export what child processes need."""
    from aperture_resources.database import resolve_urls

    app_url, dagster_url = resolve_urls(settings.database_url.get_secret_value(), settings.data_dir)
    home = settings.data_dir.absolute() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    source = PROJECT_ROOT / "dagster.yaml"
    if not source.exists():
        raise ConfigError(f"dagster.yaml was not found beside the package ({source}); install aperture from "
                          "its source tree (pip install -e .).")
    shutil.copyfile(source, home / "dagster.yaml")
    exported = {
        "APERTURE_DATABASE_URL": app_url,
        "APERTURE_DAGSTER_STORAGE_URL": dagster_url,
        "DAGSTER_HOME": str(home),
        "APERTURE_DATA_DIR": str(settings.data_dir.absolute()),
    }
    os.environ.update(exported)
    return exported


def open_instance():
    """The persistent Dagster instance. Its first use creates Dagster's tables, and two processes doing that at
    once collide (a duplicate alembic_version row), so processes take turns under an advisory lock."""
    from dagster import DagsterInstance

    from aperture_resources.database import DatabaseResource

    with DatabaseResource(url=os.environ["APERTURE_DATABASE_URL"]).exclusive("dagster storage"):
        return DagsterInstance.get()


def recover(instance: DagsterInstance) -> None:
    """Fail the runs a killed process left "started", and free the pool slots they hold, so this command does
    not wait for them forever."""
    from aperture_assets.wiring.recovery import recover_dead_runs

    for line in recover_dead_runs(instance):
        print(f"aperture: {line}")
