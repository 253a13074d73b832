"""The only place aperture reaches into Dagster's private modules, because no public API exists for these:

- the run tags that make one run cover a range of partitions: `RunRequest` and `execute_in_process` take a
  single `partition_key` only, and per-user stages run as ONE run over every user (a range);
- the status of a step in a finished run, which `aperture run` reports per stage from `get_run_step_stats`;
- the Dagster event a log record carries (a step's failure, a materialization and its metadata), which the
  redacting log filter rewrites before any handler stores or prints it;
- a copy of a schedule in another time zone: the stages declare their schedules without reading the
  environment, and `defs()` applies APERTURE_TIMEZONE (`ScheduleDefinition.with_attributes` copies only the
  job and metadata; this mirrors it);
- the code-location origin of a run the CLI executes in process: without it the UI lists the run under /runs
  but not under its job nor on the Overview timeline, which look runs up by repository label.

If a Dagster upgrade moves them, this module is what changes.
"""

import logging
import os
import sys

from dagster import DagsterInstance, ScheduleDefinition
from dagster._core.events import DagsterEvent
from dagster._core.execution.stats import StepEventStatus
from dagster._core.log_manager import get_log_record_event, has_log_record_event, set_log_record_event
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    REPOSITORY_LABEL_TAG,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

# The code location `aperture dev` serves (and workspace.yaml names): CLI runs are filed under it.
LOCATION = "aperture"
MODULE = "aperture_assets.definitions"


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """Tags of a run over the partitions from `first` to `last`."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def step_succeeded(step_stats) -> bool:
    return step_stats is not None and step_stats.status == StepEventStatus.SUCCESS


def record_event(record: logging.LogRecord) -> DagsterEvent | None:
    return get_log_record_event(record) if has_log_record_event(record) else None


def replace_record_event(record: logging.LogRecord, event: DagsterEvent) -> None:
    set_log_record_event(record, event)


def in_timezone(schedule: ScheduleDefinition, timezone: str) -> ScheduleDefinition:
    """The same schedule (cron, job, evaluation function, status, description) evaluated in `timezone`."""
    return ScheduleDefinition.dagster_internal_init(
        name=schedule.name, cron_schedule=schedule.cron_schedule, job_name=None, run_config=None,
        run_config_fn=None, tags=schedule.tags, tags_fn=None, metadata=schedule.metadata, should_execute=None,
        environment_vars=schedule.environment_vars, execution_timezone=timezone,
        execution_fn=schedule._execution_fn, description=schedule.description, job=schedule.job,
        default_status=schedule.default_status, required_resource_keys=schedule._raw_required_resource_keys,
        target=None, owners=schedule.owners)


def _origin(job_name: str) -> RemoteJobOrigin:
    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=MODULE, working_directory=os.getcwd())
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target, LOCATION)
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job_name)


def origin_tags(job_name: str) -> dict[str, str]:
    """The repository-label tag an in-process run needs at creation, so the UI files it under its job."""
    return {REPOSITORY_LABEL_TAG: _origin(job_name).repository_origin.get_label()}


def attach_origin(instance: DagsterInstance, run_id: str, job_name: str) -> None:
    """Record the code-location origin of an in-process run (after it ran), as the daemon's runs carry."""
    run = instance.get_run_by_id(run_id)
    if run is not None and run.remote_job_origin is None:
        instance.run_storage.replace_job_origin(run, _origin(job_name))
