"""Fixtures of the robustness suite: a world factory and the clean reference run every fault is compared with."""

from types import SimpleNamespace

import pytest
from dagster import instance_for_test
from psycopg.conninfo import conninfo_to_dict

from tests.conftest import new_database
from tests.robustness.helpers import World, fake_ai, library_tree, server_libraries, snapshot, start_server


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long end-to-end test (its name ends in _slow)")


@pytest.fixture
def make_world(pg_server_url, template_db, sample_data, tmp_path):
    """make_world(data=None, mode="jellyfin", **server kwargs) -> World on a fresh database; all torn down after."""
    stack = []

    def make(data: dict | None = None, mode: str = "jellyfin", template: str | None = None, **kwargs) -> World:
        """`template`: start from a copy of that database (e.g. the clean run's) instead of an empty one."""
        db_gen = new_database(pg_server_url, template or template_db)
        database = next(db_gen)
        if template:  # a copy of another run's database, with a new server: forget that server's libraries
            with database.connect() as conn:
                conn.execute("DELETE FROM picks_libraries")
                conn.execute("DELETE FROM user_access")
        server = start_server(data or sample_data, mode, **kwargs)
        ai = fake_ai()
        instance_cm = instance_for_test()
        instance = instance_cm.__enter__()
        root = tmp_path / f"libraries{len(stack)}"
        root.mkdir()
        stack.append((db_gen, server, ai, instance_cm))
        return World(server=server, ai=ai, database=database, root=root, instance=instance)

    yield make
    for db_gen, server, ai, instance_cm in reversed(stack):
        instance_cm.__exit__(None, None, None)
        server.stop()
        ai.stop()
        next(db_gen, None)


@pytest.fixture(scope="session")
def clean_run(pg_server_url, template_db, sample_data, tmp_path_factory):
    """The whole pipeline once, fault-free, on a fresh database: the state every recovered run must equal."""
    db_gen = new_database(pg_server_url, template_db)
    database = next(db_gen)
    server = start_server(sample_data)
    ai = fake_ai()
    root = tmp_path_factory.mktemp("clean") / "libraries"
    root.mkdir()
    try:
        with instance_for_test() as instance:
            world = World(server=server, ai=ai, database=database, root=root, instance=instance)
            results = world.run()
            assert all(r.success for r in results.values()) and len(results) == 5
            yield SimpleNamespace(snapshot=snapshot(database), tree=library_tree(root),
                                  libraries=server_libraries(server), database=database,
                                  db_name=conninfo_to_dict(database.url)["dbname"])
    finally:
        server.stop()
        ai.stop()
        next(db_gen, None)
