"""Shared fixtures: one real embedded PostgreSQL (pgvector) per test session, a fresh database per test
(cloned from a migrated template, so each test starts clean in milliseconds), and the sample server."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from aperture_resources import database as db
from aperture_resources import redaction


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server with pgvector: APERTURE_TEST_DATABASE_URL, else an embedded one for the session."""
    external = os.environ.get("APERTURE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="aperture-test-", dir="/tmp"))
    url = db.start_embedded(root, stop_on_exit=True)
    try:
        yield url
    finally:
        db.stop_embedded(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> str:
    name = f"aperture_template_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    db.migrate(db.with_database(pg_server_url, name))
    return name


@pytest.fixture
def database(pg_server_url: str, template_db: str) -> Iterator[db.DatabaseResource]:
    """A DatabaseResource on a brand-new, fully migrated database."""
    yield from new_database(pg_server_url, template_db)


@pytest.fixture(scope="module")
def module_database(pg_server_url: str, template_db: str) -> Iterator[db.DatabaseResource]:
    """One fresh database shared by a module's tests (for expensive pipeline set-ups)."""
    yield from new_database(pg_server_url, template_db)


def new_database(pg_server_url: str, template_db: str) -> Iterator[db.DatabaseResource]:
    name = f"aperture_t{os.getpid()}_{uuid.uuid4().hex[:12]}"  # unique even if this module is imported twice
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = db.with_database(pg_server_url, name)
    db._migrated.add(url)
    yield db.DatabaseResource(url=url)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sql(database: db.DatabaseResource):
    """Run one query on the test database and return all rows."""

    def run(query: str, params: tuple | dict | None = None) -> list[tuple]:
        with database.connect() as conn:
            return conn.execute(query, params).fetchall()

    return run


@pytest.fixture(scope="session")
def sample_data() -> dict:
    from aperture_dev.sample_server import load_sample_library

    return load_sample_library()


def _start_server(data: dict, mode: str, **kwargs):
    import copy

    from aperture_dev.sample_server import SampleServer

    return SampleServer(copy.deepcopy(data), mode=mode, api_key="test-key", **kwargs).start()


@pytest.fixture(params=["jellyfin"])
def sample_server(request, sample_data):
    """A fresh sample server (its state is mutated by tests) on 127.0.0.1."""
    server = _start_server(sample_data, request.param, record=True)
    yield server
    server.stop()


@pytest.fixture
def emby_server(sample_data):
    server = _start_server(sample_data, "emby", record=True)
    yield server
    server.stop()


def media_resource(server, **overrides):
    from aperture_resources.media_server import SERVERS

    params = {"url": server.url, "api_key": "test-key", "retries": 3, "backoff_seconds": 0.01, "page_size": 200,
              **overrides}
    return SERVERS[server.mode](**params)


@pytest.fixture
def resources(sample_server, database, tmp_path):
    from aperture_resources.library.resource import LibraryResource
    from aperture_resources.pipeline_config import PipelineConfig

    media = media_resource(sample_server)
    return {"media_server": media, "database": database, "pipeline": PipelineConfig(),
            "library": LibraryResource(media_server=media, root=str(tmp_path / "libraries"))}


def strm_options(kind: str, url: str, key: str | None = None):
    """strm-mode writer options with the stream URLs the `kind` client builds (the key only when given)."""
    from aperture_resources.library import LibraryOptions
    from aperture_resources.media_server import SERVERS

    with SERVERS[kind](url=url, api_key=key or "unused").client() as client:
        return LibraryOptions(mode="strm", stream_url=client.stream_url_template(key))


@pytest.fixture(autouse=True)
def registered_secrets() -> Iterator[None]:
    """Secrets a test's resources register for redaction are forgotten after it, as when its process exits."""
    before = redaction.registered()
    yield
    redaction._registered.intersection_update(before)

