"""What every stage's asset body shares, applied by one decorator (under @asset):

- one materialization of a stage at a time across processes: the body holds a PostgreSQL advisory lock
  named after the stage, so a schedule firing during a manual run waits instead of racing on the same
  rows or the same media-server libraries;
- errors a user must fix are not worth retrying: a ConfigError becomes a Dagster Failure that skips the
  job's RetryPolicy and shows its one sentence in the UI and the CLI.
"""

import functools
from collections.abc import Callable
from contextlib import nullcontext

from dagster import Failure

from aperture_resources.settings import ConfigError


def stage_body(fn: Callable) -> Callable:
    """Wrap an asset body whose `database` resource is passed by keyword (as Dagster does)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        database = kwargs.get("database")
        try:
            with database.exclusive(fn.__name__) if database is not None else nullcontext():
                return fn(*args, **kwargs)
        except ConfigError as exc:
            raise Failure(description=str(exc), allow_retries=False) from None

    return wrapper
