"""User partitions carry the user's name, stay put when the user is renamed, and replace the id-keyed partitions
of installs made before names."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aperture_assets.logic.names import partition_key
from aperture_assets.wiring.partitions import users_partitions

FORBIDDEN = ("...", ",", "[", "]", "/", "\\", "\n", "\t", "\0")


def keys(world) -> list[str]:
    return world.instance.get_dynamic_partitions(users_partitions.name)


def picks_by_user(world) -> dict[str, int]:
    with world.database.connect() as conn:
        return dict(conn.execute(
            "SELECT u.name, count(*) FROM recommendation_runs r JOIN recommendations p ON p.run_id = r.id "
            "JOIN media_users u ON u.id = r.user_id "
            "WHERE r.id = (SELECT max(id) FROM recommendation_runs l WHERE l.user_id = r.user_id) GROUP BY u.name"))


@given(st.text(max_size=200), st.sets(st.text(max_size=60), max_size=5))
def test_a_key_is_safe_for_dagster_and_never_taken(name, taken):
    key = partition_key(name, "0123456789abcdef0123456789abcdef", taken)
    assert key.casefold() not in {t.casefold() for t in taken}
    assert key.strip() and not any(bad in key for bad in FORBIDDEN)
    assert len(key) <= 40 + 33


@pytest.mark.parametrize(("name", "taken", "expected"), [
    ("alice", [], "alice"),
    ("Alice", ["alice"], "Alice-01234567"),  # two names that differ only in case
    ("../../etc", [], "etc"),
    ("Kids, TV [old]", [], "Kids- TV -old"),
    ("🎬", [], "user"),
])
def test_key_of_a_name(name, taken, expected):
    assert partition_key(name, "0123456789abcdef0123456789abcdef", taken) == expected


def test_partitions_are_named_and_survive_a_rename(make_world):
    world = make_world()
    assert all(r.success for r in world.run().values())
    assert {"alice", "bob", "kid"} <= set(keys(world))
    before = picks_by_user(world)
    alice = next(u for u in world.server.state.users.values() if u.name == "alice")
    alice.name = "Alicia"
    assert all(r.success for r in world.run().values())
    assert "alice" in keys(world) and "Alicia" not in keys(world)  # her history and runs stay under one key
    after = picks_by_user(world)
    assert after["Alicia"] == before["alice"]


def test_two_users_whose_names_differ_only_in_case_get_two_keys(make_world):
    world = make_world()
    sam = world.server.state.add_user("sam")
    big_sam = world.server.state.add_user("Sam")
    assert all(r.success for r in world.run(("catalog", "embeddings", "history")).values())
    with world.database.connect() as conn:
        got = dict(conn.execute("SELECT id, partition_key FROM media_users WHERE id = ANY(%s)", ([sam, big_sam],)))
    assert got[big_sam] == "Sam" and got[sam] == f"sam-{sam[:8]}"  # keys are given in name order
    assert {got[sam], got[big_sam]} <= set(keys(world))


def test_id_keyed_partitions_of_an_older_install_are_replaced_by_named_ones(make_world):
    world = make_world()
    assert all(r.success for r in world.run().values())
    before = picks_by_user(world)
    with world.database.connect() as conn:  # as before keys carried names
        ids = [row[0] for row in conn.execute("SELECT id FROM media_users WHERE partition_key IS NOT NULL")]
        conn.execute("UPDATE media_users SET partition_key = NULL")
    for key in keys(world):
        world.instance.delete_dynamic_partition(users_partitions.name, key)
    world.instance.add_dynamic_partitions(users_partitions.name, ids)
    assert all(r.success for r in world.run().values())
    assert not set(keys(world)) & set(ids) and "alice" in keys(world)
    assert picks_by_user(world) == before
