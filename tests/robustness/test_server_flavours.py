"""The whole pipeline on the newest server flavours, Jellyfin 12 and Emby 4.9, end to end.

Jellyfin 12 turns legacy authorization off (only the `Authorization: MediaBrowser` header and `ApiKey` work),
refuses library names with whitespace at either end and has no `/Users/{id}/Items`; Emby 4.9 drops
`BlockedMediaFolders` from user policies, and Emby sends a series' year, dates, status and ratings only when
`Fields` names them. On both, every stage succeeds and every series field the library writes reaches the
picks: the folder is `Title (Year)` and tvshow.nfo carries the year, dates, status, ratings, genres, studios,
provider ids and the overview the server holds (the catalog's values, which are the sample data's).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.robustness.helpers import MEDIA_KEY, failure_messages, ok

FLAVOURS = {"jellyfin-12": ("jellyfin", "12.0.0"), "emby-4.9": ("emby", "4.9.0.41")}
SPACED_USER = "  Zoe  "  # Jellyfin 12 refuses a library named with whitespace at either end


def _data(sample_data: dict) -> dict:
    """The bundled sample plus a user whose name starts and ends with spaces, watching what alice watched."""
    data = copy.deepcopy(sample_data)
    alice = next(u for u in data["users"] if u["name"] == "alice")
    data["users"].append({**copy.deepcopy(alice), "name": SPACED_USER, "admin": False})
    return data


def _catalog(world) -> dict[str, tuple]:
    """Series name -> (year, end year, status, official rating, community rating, premiere date) as the catalog
    stored them (the same for every copy of a series)."""
    with world.database.connect() as conn:
        rows = conn.execute("SELECT name, year, end_year, status, official_rating, community_rating, premiere_date "
                            "FROM series WHERE removed_at IS NULL").fetchall()
    out: dict[str, tuple] = {}
    for name, *values in rows:
        assert out.setdefault(name, tuple(values)) == tuple(values), f"copies of {name} differ"
    return out


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_pipeline_on_the_newest_flavours_writes_every_series_field(flavour, make_world, sample_data):
    mode, version = FLAVOURS[flavour]
    data = _data(sample_data)
    world = make_world(data, mode, version=version)
    if mode == "jellyfin":  # strm files: their stream URLs must carry the key in the form 12 accepts
        world.library = {"mode": "strm", "strm_api_key": True}
    results = world.run()
    assert ok(results), failure_messages(results)
    assert world.server.state.version == version

    source = {s["name"]: s for s in data["series"]}
    catalog = _catalog(world)
    for name, (year, end_year, status, rating, community, premiere) in catalog.items():
        if name not in source:
            continue  # a scanned picks series would be a feedback loop; there must be none (checked below)
        s = source[name]
        assert year == s.get("year") and end_year == s.get("end_year") and status == s.get("status"), name
        assert rating == s.get("official_rating") and community == s.get("community_rating"), name
        assert (premiere is None) == (s.get("year") is None and not s.get("first_aired")), name
    assert set(catalog) <= set(source), "picks libraries were read back as catalog"

    nfos = sorted(world.root.glob("users/*/ai-series/*/tvshow.nfo"))
    users_with_picks = {p.parents[2].name for p in nfos}
    assert len(users_with_picks) >= 10, users_with_picks
    assert any(name.startswith("Zoe [") for name in users_with_picks), "the user with a spaced name got no picks"
    with_year = 0
    for nfo in nfos:
        root = etree.parse(str(nfo)).getroot()
        title = root.findtext("title")
        s = source[title]
        year, end_year, status, rating, community, premiere = catalog[title]
        folder = nfo.parent.name
        if year is None:
            assert root.find("year") is None and not re.search(r" \(\d{4}\)", folder), folder
        else:
            with_year += 1
            assert root.findtext("year") == str(year), (folder, root.findtext("year"), year)
            assert re.fullmatch(rf".+ \({year}\)( \[[^]]+\])?", folder), (folder, year)
        assert root.findtext("premiered") == (premiere.isoformat() if premiere else None), folder
        assert root.findtext("enddate") == (f"{end_year}-12-31" if end_year else None), folder
        assert root.findtext("status") == status and root.findtext("mpaa") == rating, folder
        assert root.findtext("rating") == (None if community is None else f"{community:.1f}"), folder
        assert [g.text for g in root.findall("genre")] == s["genres"], folder
        assert [g.text for g in root.findall("studio")] == s["studios"], folder
        ids = {u.get("type"): u.text for u in root.findall("uniqueid")}
        assert ids == {k.lower(): v for k, v in s["provider_ids"].items()}, folder
        assert s["overview"] and s["overview"] in (root.findtext("plot") or ""), folder
    assert with_year >= len(nfos) - 5 and with_year > 20

    # the server made one library per user, named as the flavour accepts
    state = world.server.state
    picks = [f for f in state.folders if "AI Picks" in f["Name"]]
    assert len(picks) == len(users_with_picks), sorted(f["Name"] for f in picks)
    assert all(f["Name"] == f["Name"].strip() for f in picks)
    assert "Zoe's AI Picks - TV" in {f["Name"] for f in picks}
    assert all(state.library_items(f["ItemId"]) for f in picks), "a picks library the server scanned empty"

    if mode == "jellyfin":
        _strm_urls_play_on_jellyfin_12(world)
    else:  # Emby 4.9's UserPolicy has no BlockedMediaFolders, even after aperture wrote every policy back
        assert all("BlockedMediaFolders" not in u.policy for u in state.users.values())
        assert any(u.policy.get("EnableAllFolders") is False for u in state.users.values())


def _strm_urls_play_on_jellyfin_12(world) -> None:
    """Every episode .strm holds the server's stream URL with `ApiKey`, which the 12 flavour plays; the same URL
    with the legacy `api_key` is refused."""
    server_urls = [u for u in (_strm_url(p) for p in world.root.rglob("*.strm")) if u.startswith(world.server.url)]
    assert len(server_urls) > 50
    assert all("ApiKey=" in u and "api_key=" not in u for u in server_urls)
    with httpx.Client(timeout=10) as http:
        for url in server_urls[:: max(1, len(server_urls) // 20)]:
            assert http.get(url).status_code == 200, url
            assert http.get(url.replace("ApiKey=", "api_key=")).status_code == 401, url
        assert http.get(server_urls[0].replace(f"ApiKey={MEDIA_KEY}", "ApiKey=wrong")).status_code == 401


def _strm_url(path: Path) -> str:
    return next((line.strip() for line in path.read_text().splitlines() if line.strip()), "")
