"""What every stage's asset body shares, applied by one decorator (under @asset):

- one materialization of a stage at a time across processes: the body holds a PostgreSQL advisory lock
  named after the stage, so a schedule firing during a manual run waits instead of racing on the same
  rows or the same media-server libraries; stages that write only each user's own rows lock per user instead
  (PER_USER_LOCKS), so runs over different users go side by side on different workers;
- only transient errors are retried (the job's RetryPolicy): the network, a timeout, the server answering 5xx
  or 429, the database going away (see `transient`). Anything else fails the same way again, so it becomes a
  Dagster Failure that skips the retries: a ConfigError shows just its one sentence in the UI and the CLI; a
  rejected request (4xx), a malformed answer or a bug keeps its cause for the traceback;
- the UI can't be turned against the host: a run whose config overrides a resource setting that carries a
  secret or chooses where data goes (server URL, keys, library root, database) is refused before any work, so
  the launchpad can't send the API key elsewhere or write outside the library root;
- secrets never reach a log line, an error or metadata: the step's log manager redacts every record and event
  (see log_redaction.py);
- the process keeps a few connections to Dagster's storage (see `pool_storage_connections`);
- the run names the process that runs it (the `aperture/worker` tag, for runs the daemon launches: the CLI tags
  its own), so a run whose process was killed is found and marked failed (see recovery.py).
"""

import functools
import weakref
from collections.abc import Callable, Mapping
from contextlib import nullcontext

import httpx
import psycopg
from dagster import DagsterInstance, Failure, RetryRequested

from aperture_assets.wiring import progress
from aperture_assets.wiring.log_redaction import redact_logs
from aperture_assets.wiring.recovery import tag_run
from aperture_resources.ai.base import TransientError
from aperture_resources.settings import ConfigError

_pooled: "weakref.WeakSet[DagsterInstance]" = weakref.WeakSet()


def pool_storage_connections(instance: DagsterInstance) -> None:
    """Keep a few storage connections open in this process (once per instance).

    Dagster's Postgres storage opens a new connection for every call unless told otherwise, and one stage over
    ~50 user partitions makes hundreds of calls (events, the partition lookups in each per-partition
    metadata call): ~6 s of a no-change 50-user `aperture run`. dagster-webserver pools for the same reason;
    a run or step process is as long-lived. No storage connection is checked out while an asset body runs,
    so switching engines there is safe; SQLite storage ignores this."""
    if instance not in _pooled:
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
        _pooled.add(instance)


# Set only from the environment (the settings model), never from a run's config.
LOCKED = {
    "media_server": {"url", "api_key", "picks_root"},
    "library": {"root", "media_server"},
    "database": {"url", "data_dir"},
    "ai": {"openai_base_url", "openai_api_key", "ollama_host"},
}


def refuse_locked_overrides(run_config: Mapping) -> None:
    """Raise a ConfigError naming every locked resource setting the run's config tries to set."""
    resources = run_config.get("resources") if isinstance(run_config, Mapping) else None
    overridden = sorted(
        f"resources.{name}.config.{key}" for name, value in (resources or {}).items() if isinstance(value, Mapping)
        for key in (value.get("config") or {}) if key in LOCKED.get(name, ()))
    if overridden:
        raise ConfigError(f"{', '.join(overridden)} cannot be set from a run's config (they carry secrets or choose "
                          "where data goes): set the APERTURE_* environment variables instead.")


def transient(exc: BaseException) -> bool:
    """True when `exc`, or an error it was raised from or while handling, is one a later attempt can get past.

    The clients already retry a few times within seconds and then raise their own one-sentence error (a
    MediaServerError, a ConfigError for a host that never answered) while handling the last low-level one, so
    the chain is what tells a server that is down (retried, in case it is restarting) from one that answered
    401, 404 or nonsense (never retried). For PostgreSQL, an OperationalError (no connection, a lost one, a
    shutdown, a deadlock) is transient; a wrong database URL stops `aperture` and the UI before any run."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, httpx.HTTPStatusError):
            if exc.response.status_code >= 500 or exc.response.status_code == 429:
                return True
        elif isinstance(exc, httpx.TransportError | psycopg.OperationalError | TransientError | ConnectionError
                        | TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


# The library stage stays one at a time: it rewrites every user's library policy on the server.
PER_USER_LOCKS = frozenset({"series_watch_history", "series_recommendations"})


def lock_names(stage: str, context) -> list[str]:
    """The advisory locks a stage's body holds: one per user of the run for PER_USER_LOCKS, else the stage's."""
    if stage in PER_USER_LOCKS and (context.has_partition_key or context.has_partition_key_range):
        return [f"{stage}:{key}" for key in context.partition_keys]
    return [stage]


def stage_body(fn: Callable) -> Callable:
    """Wrap an asset body whose `database` resource is passed by keyword (as Dagster does)."""

    @functools.wraps(fn)
    def wrapper(context, *args, **kwargs):
        redact_logs(context.log)
        pool_storage_connections(context.instance)  # also for runs the daemon launches
        tag_run(context.instance, context.run)
        database = kwargs.get("database")
        try:
            refuse_locked_overrides(context.run.run_config)
            with database.exclusive(*lock_names(fn.__name__, context)) if database is not None else nullcontext():
                return fn(context, *args, **kwargs)
        except (Failure, RetryRequested):
            raise  # the body said whether to retry
        except Exception as exc:
            if transient(exc):
                raise  # the job's RetryPolicy tries again after a pause
            if isinstance(exc, ConfigError):
                raise Failure(description=str(exc), allow_retries=False) from None
            raise Failure(description=str(exc) or type(exc).__name__, allow_retries=False) from exc

    return progress.reported(fn.__name__, wrapper)
