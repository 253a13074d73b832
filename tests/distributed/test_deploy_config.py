"""The deployment files in deploy/ load: YAML that parses, instance files that pass Dagster's schema, and each
run launcher's config (and the Celery worker's) valid for its class, without a cluster or a broker."""

from pathlib import Path

import pytest
import yaml
from dagster._config import process_config, validate_config
from dagster._core.instance.config import dagster_instance_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize("kind", ["celery", "k8s"])
def test_instance_files_pass_dagsters_schema(kind):
    from dagster_celery.launcher import CeleryRunLauncher
    from dagster_k8s import K8sRunLauncher

    config, _ = dagster_instance_config(str(DEPLOY / kind))
    launcher = {"celery": CeleryRunLauncher, "k8s": K8sRunLauncher}[kind]
    assert config["run_launcher"]["class"] == launcher.__name__
    result = validate_config(launcher.config_type(), config["run_launcher"]["config"])
    assert result.success, result.errors


def test_worker_config_is_the_celery_executors(monkeypatch):
    from dagster_celery import celery_executor

    monkeypatch.setenv("APERTURE_CELERY_BROKER_URL", "redis://broker:6379/0")
    monkeypatch.setenv("APERTURE_CELERY_BACKEND_URL", "redis://broker:6379/1")
    value = yaml.safe_load((DEPLOY / "celery" / "worker.yaml").read_text())["execution"]["config"]
    result = process_config(celery_executor.config_schema.config_type, value)
    assert result.success, result.errors
    assert result.value["broker"] == "redis://broker:6379/0"


def test_helm_values_parse_and_launch_runs_as_kubernetes_jobs():
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    deployment, = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "aperture_assets.definitions"]
