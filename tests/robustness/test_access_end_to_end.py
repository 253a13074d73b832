"""The server's access rules bind every pick end to end, on both servers: the bundled sample's child account (a
rating limit, unrated series blocked, a blocked tag) gets nothing above its limit, a user who cannot open Kids TV
gets nothing from it (no link into it either), a disliked show is never picked, each series' NFO plot starts
with why, and a restriction added after the picks were made is obeyed by the next library sync."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from aperture_assets.defs.library.checks import library_matches_recommendations
from aperture_resources.library.resource import short_id
from aperture_resources.media_server.access import parse_scale, rating_value
from tests.robustness.helpers import failure_messages, ok


def ids_by_name(world) -> dict[str, str]:
    return {u.name: uid for uid, u in world.server.state.users.items()}


def picks_of(world, user_id: str) -> list[tuple]:
    """(name, official rating, tags, library name) of the user's latest picks."""
    with world.database.connect() as conn:
        return conn.execute(
            "SELECT s.name, s.official_rating, s.tags, l.name FROM latest_recommendations r "
            "JOIN series s ON s.id = r.series_id LEFT JOIN libraries l ON l.id = s.library_id "
            "WHERE r.user_id = %s ORDER BY r.rank", (user_id,)).fetchall()


def user_folder(root: Path, user_id: str) -> Path:
    (folder,) = [p for p in (root / "users").iterdir() if p.name.endswith(f"[{short_id(user_id)}]")]
    return folder / "ai-series"


def nfo_values(folder: Path, tag: str) -> dict[str, str | None]:
    return {nfo.parent.name: etree.parse(str(nfo)).findtext(tag) for nfo in folder.glob("*/tvshow.nfo")}


def link_targets(folder: Path) -> list[str]:
    return [os.readlink(p) for p in folder.rglob("*") if p.is_symlink()]


def user_metadata(result, key: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.partition == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"no materialization for partition {key}")


@pytest.mark.parametrize("mode", ["jellyfin", "emby"])
def test_every_pick_obeys_access_parental_rules_and_dislikes(mode, make_world):
    world = make_world(mode=mode)
    results = world.run()
    assert ok(results), failure_messages(results)
    ids = ids_by_name(world)
    with world.resources()["media_server"].client() as client:
        scale = parse_scale(client.parental_ratings())
    assert scale.get("tv-pg") == 10
    kid, carol, heidi = ids["kid"], ids["carol"], ids["heidi"]

    kid_picks = picks_of(world, kid)
    assert kid_picks, "the child still gets picks"
    for name, rating, tags, _library in kid_picks:
        assert rating, f"{name}: unrated series are blocked for kid"
        assert "scary" not in {t.casefold() for t in tags}, name
        assert rating_value(scale, rating) <= 10, (name, rating)
    kid_meta = user_metadata(results["recommendations"], "kid")  # partitions are keyed by name
    assert kid_meta["removed_rating"] > 0 and kid_meta["picks"] == len(kid_picks)
    kid_ratings = nfo_values(user_folder(world.root, kid), "mpaa")
    assert kid_ratings and all(r in {"TV-Y", "TV-G", "TV-Y7", "TV-PG", "G", "PG"} for r in kid_ratings.values())

    carol_picks = picks_of(world, carol)
    assert carol_picks and all(library != "Kids TV" for *_, library in carol_picks), carol_picks
    assert user_metadata(results["recommendations"], "carol")["removed_access"] > 0
    assert not [t for t in link_targets(user_folder(world.root, carol)) if t.startswith("/media/kids")]

    heidi_names = {name for name, *_ in picks_of(world, heidi)}
    assert not heidi_names & {"The Witcher", "Seinfeld"}
    with world.database.connect() as conn:
        disliked = {r[0] for r in conn.execute("SELECT s.name FROM series_dislikes d JOIN series s ON "
                                               "s.id = d.series_id WHERE d.user_id = %s", (heidi,))}
    assert disliked == {"The Witcher", "Seinfeld"}

    plots = nfo_values(user_folder(world.root, heidi), "plot")
    assert plots and all(p.startswith(("Because you watched ", "Popular ")) and "\n\n" in p
                         for p in plots.values()), plots


def test_a_restriction_added_after_the_picks_is_obeyed_by_the_next_library_sync(make_world):
    world = make_world()
    results = world.run()
    assert ok(results), failure_messages(results)
    alice = ids_by_name(world)["alice"]
    before = picks_of(world, alice)
    assert any(rating in ("TV-14", "TV-MA") for _, rating, *_ in before)  # something the limit will refuse
    with world.server.state.lock:
        world.server.state.users[alice].policy["MaxParentalRating"] = 10  # TV-PG on the sample's scale
    again = world.run(("library",), checks=(library_matches_recommendations,))
    assert again["library"].success, failure_messages(again)
    ratings = nfo_values(user_folder(world.root, alice), "mpaa")
    assert ratings and all(r in {"TV-Y", "TV-G", "TV-Y7", "TV-PG"} for r in ratings.values()), ratings
    (run,) = [e for e in again["library"].get_asset_materialization_events()][-1:]
    refused = {k: v.value for k, v in run.materialization.metadata.items()}["run_picks_refused_now"]
    assert refused == sum(1 for _, rating, *_ in before if rating in ("TV-14", "TV-MA"))
    # the check judges the folder against the picks alice may open now: left out is not missing
    checks = {e.check_name: e.passed for e in again["library"].get_asset_check_evaluations()}
    assert checks["library_matches_recommendations"] is True, checks
