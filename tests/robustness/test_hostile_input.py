"""Hostile library metadata end to end (catalog -> embeddings -> history -> recommendations -> library): nothing
crashes, titles round-trip verbatim through parameterised SQL, every file stays inside the library root.
Name sanitising and NFO rendering have their own property-based tests (tests/test_library_naming.py,
tests/test_library_nfo.py)."""

import copy
import os
from pathlib import Path

import pytest

from tests.robustness.helpers import failure_messages

HOSTILE_NAMES = [
    "../../../../etc/passwd",
    "..",
    ".",
    "/absolute/path/show",
    "Back\\slash\\..\\..\\escape",
    "Nul\x00Byte and \x07bell\x1b[31m escape",
    "🎬 Émoji Show 🍿 with ZWJ 👩‍👩‍👧",
    "שלום עולם \u202etxt.exe",
    "T" * 1000,
    "<tvshow><title>&amp; \"quotes\" 'apos' ]]> </title>",
    "'); DROP TABLE series;--",
    "Robert\"); DELETE FROM episodes WHERE (\"1\"=\"1",
    "   ",
    "CON",
    "line\nbreak\r\ttab",
    "%s %(x)s {0} {name}",
]


def hostile_library(sample: dict) -> dict:
    """The sample library with its first series renamed to hostile strings and stripped of optional fields."""
    data = copy.deepcopy(sample)
    for i, (series, name) in enumerate(zip(data["series"], HOSTILE_NAMES, strict=False)):
        series["name"] = name
        series["overview"] = name + " — " + HOSTILE_NAMES[-1 - i % len(HOSTILE_NAMES)]
        series["tags"] = [name[:50]]
        if i % 3 == 0:  # every optional field missing or null
            for key in ("year", "end_year", "status", "official_rating", "community_rating", "sort_name",
                        "original_title", "first_aired"):
                series[key] = None
            series.update(studios=[], genres=[], provider_ids={})
        if i % 3 == 1:
            series["original_title"] = name[::-1]
            series["studios"] = [name, "../network"]
            series["genres"] = [name, ""]
    return data


def mangle_server(server) -> str:
    """Absurd numbers and missing fields the description format cannot express, straight into the server."""
    state = server.state
    with state.lock:
        state.bump()
        items = sorted(state.items.values(), key=lambda i: i.id)
        series = [i for i in items if i.type == "Series"]
        episodes = [i for i in items if i.type == "Episode"]
        series[0].base["ProductionYear"] = 99999
        series[1].base["CommunityRating"] = -5e30
        nameless = series[2].base.pop("Name")  # a series with no name at all
        series[3].base["Status"] = None
        series[4].extra["Genres"] = None
        series[5].extra["ProviderIds"] = {"Tvdb": None, "Imdb": "", "Tmdb": 12}
        episodes[0].base["ParentIndexNumber"] = 9999
        episodes[1].base["RunTimeTicks"] = 0
        episodes[2].base["RunTimeTicks"] = -10_000_000
        episodes[3].base["IndexNumber"] = -4
        episodes[4].base["PremiereDate"] = "not a date"
        episodes[5].base["IndexNumber"] = None
        episodes[6].base["Name"] = "'); DROP TABLE episodes;--\x00"
        episodes[7].extra["Path"] = "../../../../etc/shadow"
        episodes[8].base["IndexNumber"] = 10**30  # overflows any integer column
        series[6].base["CommunityRating"] = 1e39  # overflows a real
        episodes[9].base["Name"] = "Lone \ud800 surrogate"  # not valid UTF-8: PostgreSQL refuses it
        episodes[10].extra["Path"] = "/etc/ld.so.conf"  # a host file, outside every TV library
    return nameless


def test_a_hostile_library_runs_end_to_end(make_world, sample_data, tmp_path):
    data = hostile_library(sample_data)
    world = make_world(data)
    nameless = mangle_server(world.server)
    results = world.run()
    assert all(r.success for r in results.values()) and len(results) == 5, failure_messages(results)

    with world.database.connect() as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'aperture'")}
        names = {r[0] for r in conn.execute("SELECT name FROM series")}
        overviews = {r[0] for r in conn.execute("SELECT overview FROM series WHERE overview IS NOT NULL")}
        counts = conn.execute("SELECT (SELECT count(*) FROM series), (SELECT count(*) FROM episodes), "
                              "(SELECT count(*) FROM episode_watch_state), "
                              "(SELECT count(*) FROM latest_recommendations)").fetchone()
        picked = {r[0] for r in conn.execute("SELECT DISTINCT s.name FROM latest_recommendations r "
                                             "JOIN series s ON s.id = r.series_id")}
    assert {"series", "episodes", "seasons", "episode_watch_state", "series_embeddings"} <= tables
    assert all(counts), counts
    expected = {s["name"].replace("\x00", "") for s in data["series"][:len(HOSTILE_NAMES)] if s["name"].strip()}
    expected.discard(nameless.replace("\x00", ""))  # that one lost its Name on the server
    assert any(n.startswith("Untitled series") for n in names)
    missing = expected - names
    assert not missing, [m[:60] for m in missing]
    assert any("DROP TABLE series" in o for o in overviews)
    catalog = results["catalog"].get_asset_materialization_events()[0].materialization.metadata
    dropped = " ".join(catalog["untrusted_values"].value)
    assert "IndexNumber=1000000000000000000000000000000" in dropped and "CommunityRating=1e+39" in dropped
    with world.database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM episodes WHERE name = 'Lone ? surrogate'").fetchone()[0] == 1
    assert not [p for p in world.root.rglob("*") if p.is_symlink() and os.readlink(p).startswith("/etc/")]

    hostile_picks = picked & {n.replace("\x00", "") for n in HOSTILE_NAMES}
    assert len(hostile_picks) >= 3, hostile_picks  # the library stage really wrote hostile names
    root = world.root.resolve()
    for dirpath, dirnames, filenames in os.walk(world.root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            assert path.parent.resolve().is_relative_to(root), path
            assert path.is_symlink() or path.resolve().is_relative_to(root), path
            assert "\x00" not in name and "/" not in name
    outside = {p.name for p in tmp_path.iterdir()}
    assert outside <= {"libraries0"}, outside  # nothing written beside the root


@pytest.mark.parametrize("mode", ["emby"])
def test_hostile_catalog_on_emby(make_world, sample_data, mode):
    world = make_world(hostile_library(sample_data), mode=mode)
    mangle_server(world.server)
    results = world.run(("catalog", "embeddings", "history"))
    assert all(r.success for r in results.values()), failure_messages(results)
