"""Shared fixtures: one real embedded PostgreSQL (pgvector) per test session, a fresh database per test
(cloned from a migrated template, so each test starts clean in milliseconds), and the sample server."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from aperture_resources import database as db

_counter = itertools.count()


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
    name = f"aperture_t{os.getpid()}_{next(_counter)}"
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
