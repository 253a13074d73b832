"""Quiet faults: answers that look fine but would delete, hide or expose something. Each must fail closed.

The fault-injecting sample server answers a route once with a 200 and an empty or short body, or with an
error, exactly where the pipeline is about to act on it."""

from __future__ import annotations

import pytest
from dagster import build_sensor_context, materialize

from aperture_assets.defs.library.assets import series_library
from aperture_assets.defs.users.sensors import media_users_sensor
from aperture_assets.wiring.dagster_internals import partition_range_tags
from aperture_resources.media_server import MediaServerError
from tests.robustness.helpers import failure_messages, library_tree, ok, server_libraries

PICKS = "AI Picks - TV"


def picks_libraries(world) -> list[str]:
    return [name for name in server_libraries(world.server) if PICKS in name]


def library_stage(world):
    """The library stage alone, over every user partition (no users sync before it)."""
    keys = sorted(world.instance.get_dynamic_partitions("users"))
    return materialize([series_library], resources=world.resources(), instance=world.instance,
                       tags=partition_range_tags(keys[0], keys[-1]), raise_on_error=False)


def policy_of(world, name: str) -> dict:
    return next(u for u in world.server.state.users_json() if u["Name"] == name)["Policy"]


def test_an_empty_user_list_deletes_nothing(make_world):
    world = make_world()
    assert ok(world.run())
    libraries, tree = picks_libraries(world), library_tree(world.root)
    world.server.fail_next("/Users", 200, times=1, payload=[])
    with pytest.raises(MediaServerError, match="listed no users"):
        world.run(("library",))  # the users sync that starts a run refuses it
    world.server.fail_next("/Users", 200, times=1, payload=[])
    result = library_stage(world)  # and so does the library stage itself
    assert not result.success and any("listed no users" in m for m in failure_messages({"library": result}))
    assert picks_libraries(world) == libraries and library_tree(world.root) == tree


def test_a_user_missing_from_one_read_keeps_their_library_until_several_reads_agree(make_world):
    world = make_world()
    assert ok(world.run())
    before = len(picks_libraries(world))
    erin = next(u for u in world.server.state.users_json() if u["Name"] == "erin")
    shrunk = [u for u in world.server.state.users_json() if u["Id"] != erin["Id"]]
    world.server.fail_next("/Users", 200, times=1000, payload=shrunk)  # every user read from now on
    folder = next(p for p in (world.root / "users").iterdir() if p.name.endswith(f"[{erin['Id'][:12]}]"))
    for _ in range(2):  # fewer than APERTURE_USER_REMOVAL_READS (3) reads without erin: held
        assert ok(world.run())
        assert len(picks_libraries(world)) == before and folder.is_dir()
    assert ok(world.run())  # the third read in a row agrees: erin is gone
    assert len(picks_libraries(world)) == before - 1 and not folder.exists()


def test_an_empty_library_listing_never_creates_a_second_library(make_world):
    world = make_world()
    assert ok(world.run())
    libraries = picks_libraries(world)
    world.server.fail_next("/Library/VirtualFolders", 200, times=1, payload=[])
    results = world.run(("library",))
    assert not ok(results) and any("listed no libraries" in m for m in failure_messages(results))
    world.server.fail_next("/Library/VirtualFolders", 200, times=1,
                           payload=[f for f in world.server.state.folders if PICKS not in f["Name"]])
    results = world.run(("library",))
    assert not ok(results) and any("none of the" in m for m in failure_messages(results))
    assert picks_libraries(world) == libraries  # no "...TV2"
    assert world.run(("library",))["library"].success and picks_libraries(world) == libraries


def test_names_that_differ_only_in_case_get_two_private_libraries(make_world, sample_data):
    import copy

    data = copy.deepcopy(sample_data)
    alice = next(u for u in data["users"] if u["name"] == "alice")
    data["users"].append({**copy.deepcopy(alice), "name": "ALICE"})
    world = make_world(data)
    assert ok(world.run())
    names = picks_libraries(world)
    assert f"alice's {PICKS}" in names and any(n.startswith(f"ALICE's {PICKS} (") for n in names)
    owners = {f["Name"]: f for f in world.server.state.folders if PICKS in f["Name"]}
    for user in world.server.state.users_json():
        if user["Policy"].get("IsDisabled"):
            continue
        visible = {f["Name"] for f in owners.values() if f["ItemId"] in user["Policy"]["EnabledFolders"]}
        assert not user["Policy"]["EnableAllFolders"] and len(visible) <= 1, (user["Name"], visible)


def test_a_new_user_is_restricted_by_the_users_sensor_before_any_run(make_world):
    world = make_world()
    assert ok(world.run())
    state = world.server.state
    state.add_user("newcomer")
    assert policy_of(world, "newcomer")["EnableAllFolders"]
    with build_sensor_context(instance=world.instance, resources=world.resources()) as context:
        media_users_sensor(context)
    policy = policy_of(world, "newcomer")
    picks_ids = {f["ItemId"] for f in state.folders if PICKS in f["Name"]}
    assert not policy["EnableAllFolders"] and not picks_ids & set(policy["EnabledFolders"])
    assert set(policy["EnabledFolders"]) == {f["ItemId"] for f in state.folders if PICKS not in f["Name"]}


def test_users_who_saw_everything_see_libraries_added_later(make_world):
    world = make_world()
    state = world.server.state
    dave = next(u for u in state.users.values() if u.name == "dave")
    tv = next(f for f in state.folders if f["CollectionType"] == "tvshows")
    dave.policy = {**dave.policy, "EnableAllFolders": False, "EnabledFolders": [tv["ItemId"]]}  # the admin's choice
    assert policy_of(world, "alice")["EnableAllFolders"]
    assert ok(world.run())
    anime = world.root.parent / "anime"
    anime.mkdir()
    added = state.create_folder("Anime", "tvshows", [str(anime)])
    assert world.run(("library",))["library"].success
    assert added["ItemId"] in policy_of(world, "alice")["EnabledFolders"]  # alice saw everything: still does
    assert added["ItemId"] not in policy_of(world, "dave")["EnabledFolders"]  # dave's list stays the admin's
    assert tv["ItemId"] in policy_of(world, "dave")["EnabledFolders"]


def test_a_server_that_changes_address_changes_no_row_and_no_file(make_world):
    """The same server reached at another base URL (a new host name, a reverse proxy): a no-change run after it
    writes nothing, in the catalog or in any library (symlink mode stores no server address)."""
    world = make_world()
    world.media["picks_root"] = str(world.root)  # as `aperture run` sets it: picks libraries are not catalog
    assert ok(world.run()), "the first run"
    port = world.server.url.rsplit(":", 1)[1]
    world.media["url"] = f"http://localhost:{port}/"
    again = world.run()
    assert ok(again), failure_messages(again)

    def meta(stage: str) -> dict:
        events = again[stage].get_asset_materialization_events()
        return {k: v.value for k, v in events[-1].materialization.metadata.items()}

    assert meta("catalog")["rows_changed"] == 0, meta("catalog")
    assert meta("library")["run_files_written"] == 0 and meta("library")["run_files_removed"] == 0
    with world.database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM series WHERE poster_path LIKE '/Items/%%'").fetchone()[0] > 0


def picks_libraries_on(world) -> dict[str, list[str]]:
    """Picks library names per owner short id, as the server lists them (any root)."""
    from aperture_resources.library.naming import picks_owner

    out: dict[str, list[str]] = {}
    with world.resources()["media_server"].client() as client:
        for folder in client.libraries():
            for owner in {picks_owner(str(loc)) for loc in folder.get("Locations") or []} - {None}:
                out.setdefault(owner, []).append(str(folder.get("Name")))
    return out


@pytest.mark.parametrize("change", ["root", "name"])
def test_a_new_library_root_or_name_moves_each_user_to_one_new_library(change, make_world, tmp_path):
    world = make_world()
    assert ok(world.run()), "the first run"
    before = picks_libraries_on(world)
    assert before and all(len(names) == 1 for names in before.values())
    if change == "root":
        world.root = tmp_path / "moved"
        world.root.mkdir()
    else:
        world.library["name_template"] = "Picks for {name}"
    again = world.run()
    assert ok(again), failure_messages(again)
    after = picks_libraries_on(world)
    assert after.keys() == before.keys()
    assert all(len(names) == 1 for names in after.values()), after  # never two
    if change == "name":
        assert all(names[0].startswith("Picks for ") for names in after.values()), after
    moved = again["library"].get_asset_materialization_events()[-1].materialization.metadata
    assert moved["run_libraries_moved"].value == len(before)
    catalog = again["catalog"].get_asset_materialization_events()[-1].materialization.metadata
    assert catalog["series_new"].value == 0  # the old picks libraries were never read as TV libraries
    third = world.run()
    assert ok(third) and picks_libraries_on(world) == after
    assert third["library"].get_asset_materialization_events()[-1].materialization.metadata[
        "run_libraries_moved"].value == 0


def test_picks_libraries_made_under_another_root_are_never_read_as_catalog(make_world, tmp_path):
    """Another data dir (its own database and root) made picks libraries on the same server: this instance's
    catalog leaves them out and its privacy hides them from everyone but their owners."""
    first = make_world()
    assert ok(first.run())
    second = make_world(data=None)
    second.server.stop()
    second.server = first.server  # the same server, another database and library root
    results = second.run()
    assert ok(results), failure_messages(results)
    catalog = results["catalog"].get_asset_materialization_events()[-1].materialization.metadata
    assert catalog["libraries"].value == "TV Shows, Kids TV"
    assert all(len(names) == 2 for names in picks_libraries_on(second).values())  # one per instance
