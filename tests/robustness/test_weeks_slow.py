"""Four weekly cycles on the sample server in one test: users watch, finish and dislike picks, new episodes and
a new series arrive, a series is removed, a user is renamed, one is disabled and later re-enabled, ranks change.
After every cycle the libraries must be exactly right, and a no-change run right after must touch no file and
send the server no write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from aperture_resources.library.naming import picks_owner, series_folder_names
from aperture_resources.library.nfo import rank_date
from aperture_resources.library.resource import short_id
from aperture_resources.library_store import picks_by_user
from tests.robustness.helpers import failure_messages, ok

WRITES = ("POST", "DELETE", "PUT")


def by_name(world) -> dict[str, str]:
    return {u.name: uid for uid, u in world.server.state.users.items()}


def enabled(world) -> list[str]:
    return [uid for uid, u in world.server.state.users.items() if not u.policy.get("IsDisabled")]


def latest_picks(world, user_ids: list[str]) -> dict:
    with world.database.connect() as conn:
        return picks_by_user(conn, user_ids)


def picks_folders(world) -> dict[str, list[dict]]:
    """The server's picks libraries by owner short id."""
    out: dict[str, list[dict]] = {}
    for folder in world.server.state.folders:
        for owner in {picks_owner(str(loc)) for loc in folder.get("Locations") or []} - {None}:
            out.setdefault(owner, []).append(folder)
    return out


def check_week(world, week: int) -> None:
    state = world.server.state
    users = enabled(world)
    picks = latest_picks(world, users)
    folders = picks_folders(world)
    with state.lock:
        expected = {short_id(u) for u in users}
        names = {short_id(u): state.users[u].name for u in state.users}
        assert set(folders) == expected, (week, {names.get(o, o) for o in set(folders) - expected},
                                          {names[o] for o in expected - set(folders)})
        for uid in users:
            (library,) = folders[short_id(uid)]  # one, never two
            library_id = str(library["ItemId"])
            # private: among picks libraries, the user's policy lists only their own
            policy = state.users[uid].policy
            assert not policy.get("EnableAllFolders"), f"week {week}: {uid} sees every library"
            others = {str(f["ItemId"]) for owner, fs in folders.items() if owner != short_id(uid) for f in fs}
            assert not others & set(map(str, policy.get("EnabledFolders") or [])), f"week {week}: {uid} sees others"
            items = list(state.library_items(library_id).values())
            paths = [i.extra.get("Path") for i in items if i.extra.get("Path")]
            assert len(paths) == len(set(paths)), f"week {week}: duplicate items in {uid}'s library"
            placeholders = [i for i in items if str(i.extra.get("Path", "")).endswith("-placeholder.strm")]
            assert len(placeholders) == len(picks[uid]), f"week {week}: {uid} placeholders vs picks"
            unplayed = [i.extra["Path"] for i in placeholders if not state.data_for(uid, i.id).played]
            assert not unplayed, f"week {week}: {uid} has unplayed placeholders {unplayed}"
        for uid in users:
            check_tree(world, uid, picks[uid], week)


def check_tree(world, uid: str, picks: list, week: int) -> None:
    """Exactly the picks on disk, each placeholder dated by its rank; no stray file or folder."""
    (user_dir,) = [p for p in (world.root / "users").iterdir() if p.name.endswith(f"[{short_id(uid)}]")]
    series_dir = user_dir / "ai-series"
    names = series_folder_names(picks)
    on_disk = {p.name for p in series_dir.iterdir() if not p.name.startswith(".")}
    assert on_disk == set(names.values()), f"week {week}: {uid} stray or missing folders"
    for pick in picks:
        folder = series_dir / names[pick.series_id]
        (placeholder_nfo,) = (folder / "Season 00").glob("*-placeholder.nfo")
        added = etree.parse(str(placeholder_nfo)).findtext("dateadded")
        assert added.startswith(rank_date(pick.rank).isoformat()), f"week {week}: {pick.title} rank {pick.rank}"


def run_week(world, week: int) -> None:
    results = world.run()
    assert ok(results), (week, failure_messages(results))
    check_week(world, week)
    world.server.requests.clear()
    again = world.run()  # nothing changed on the server since
    assert ok(again), (week, failure_messages(again))
    library = again["library"].get_asset_materialization_events()[-1].materialization.metadata
    assert library["run_files_written"].value == 0 and library["run_files_removed"].value == 0, week
    writes = [(r.method, r.path) for r in world.server.requests if r.method in WRITES]
    assert not writes, f"week {week}: a no-change run wrote {writes}"


def first_episodes(state, series_id: str, count: int | None = None) -> list[str]:
    episodes = sorted((i for i in state.items.values() if i.type == "Episode" and i.series_id == series_id),
                      key=lambda i: (i.base.get("ParentIndexNumber") or 0, i.base.get("IndexNumber") or 0))
    return [e.id for e in episodes[:count]]


@pytest.mark.slow
def test_four_weeks_of_watching_keep_every_library_right_slow(make_world, sample_data):
    world = make_world()
    world.media["picks_root"] = str(world.root)  # as `aperture run` sets it
    world.server.record = True
    state = world.server.state
    ids = by_name(world)
    run_week(world, 1)

    # week 2: alice starts her top pick, bob finishes his, heidi dislikes hers; new episodes; a series goes
    now = datetime.now(UTC)
    picks = latest_picks(world, [ids["alice"], ids["bob"], ids["heidi"]])
    with state.lock:
        state.mark_played(ids["alice"], first_episodes(state, picks[ids["alice"]][0].series_id, 1)[0], when=now)
        for episode in first_episodes(state, picks[ids["bob"]][0].series_id):
            state.mark_played(ids["bob"], episode, when=now - timedelta(hours=1))
        state.set_likes(ids["heidi"], picks[ids["heidi"]][0].series_id, False)
        seasons = [i for i in state.items.values() if i.type == "Season" and i.base.get("IndexNumber") == 1][:3]
        for season in seasons:
            state.add_episode(season.id, 90)
        gone = state.remove_series(picks[ids["alice"]][1].series_id)  # her second pick leaves the server
        state.bump()
    run_week(world, 2)
    assert picks[ids["alice"]][1].series_id not in {p.series_id for p in latest_picks(world, [ids["alice"]])[
        ids["alice"]]}

    # week 3: bob is renamed, carol is disabled
    with state.lock:
        state.users[ids["bob"]].name = "Bobby"
        state.users[ids["carol"]].policy["IsDisabled"] = True
        state.bump()
    run_week(world, 3)
    assert not [p for p in (world.root / "users").iterdir() if p.name.endswith(f"[{short_id(ids['carol'])}]")]
    assert [p.name for p in (world.root / "users").iterdir() if p.name.endswith(f"[{short_id(ids['bob'])}]")]

    # week 4: carol is back, the removed series returns (a new arrival), ranks move with more watching
    with state.lock:
        state.users[ids["carol"]].policy["IsDisabled"] = False
        state.restore_series(gone)
        top = latest_picks(world, [ids["dave"]])[ids["dave"]][0]
        for episode in first_episodes(state, top.series_id, 2):
            state.mark_played(ids["dave"], episode, when=now)
        state.bump()
    run_week(world, 4)
    assert Path(world.root / "users").is_dir()
