"""Errors a user must fix are not worth retrying: turn them into a Dagster Failure that skips the job's
RetryPolicy and shows the one-sentence message in the UI and the CLI."""

import functools
from collections.abc import Callable

from dagster import Failure

from aperture_resources.settings import ConfigError


def fail_fast_on_config_errors(fn: Callable) -> Callable:
    """Wrap an asset body (under @asset) so a ConfigError fails the step at once, without retries."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            raise Failure(description=str(exc), allow_retries=False) from None

    return wrapper
