"""The bundled sample library and the synthetic generator honour DATA_SCHEMA.md and load into the sample
server's state. No database; all but the last tests are pure Python, so they fail fast when the data drifts, and
the last ones read the access rules, the rating scale and dislikes back over real HTTP from the sample server."""

import json
import socket
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aperture_dev.sample_server import SampleServer, synthetic
from aperture_dev.sample_server.model import DEFAULT_VERSIONS, RATING_VALUES, build_state, resolve_flavour

SAMPLE = Path(__file__).parents[1] / "dev" / "aperture_dev" / "sample_server" / "sample_library.json"
LAST_ALLOWED = "2026-11-20T23:59:59Z"


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def check_schema(d: dict) -> None:
    """Every cross-reference resolves and every history position exists in its series."""
    libraries = {lib["name"] for lib in d["libraries"]}
    assert {"TV Shows", "Kids TV", "Movies"} <= libraries
    keys = [s["key"] for s in d["series"]]
    assert len(keys) == len(set(keys))
    tvdb = [s["provider_ids"]["Tvdb"] for s in d["series"] if "Tvdb" in s["provider_ids"]]
    assert len(tvdb) == len(set(tvdb)), "duplicate copies are found by Tvdb id, so ids must be unique per series"
    by_key = {s["key"]: s for s in d["series"]}
    for s in d["series"]:
        assert s["libraries"] and set(s["libraries"]) <= libraries
        assert s["status"] in ("Ended", "Continuing") and (s["status"] == "Ended" or s["end_year"] is None)
        assert s["seasons"] and all(isinstance(n, int) and n > 0 for n in s["seasons"])
        assert s["name"] and s["overview"]
    names = [u["name"] for u in d["users"]]
    assert len(names) == len(set(names))
    paths = [lib["path"] for lib in d["libraries"]]
    for user in d["users"]:
        policy = user.get("policy") or {}
        assert set(policy) <= {"libraries", "max_parental_rating", "block_unrated", "blocked_tags", "allowed_tags",
                               "excluded_subfolders"}
        assert policy.get("libraries") is None or set(policy["libraries"]) <= libraries
        assert policy.get("max_parental_rating") is None or policy["max_parental_rating"].casefold() in RATING_VALUES
        assert set(policy.get("block_unrated") or []) <= {"Movie", "Trailer", "Series", "Music", "Book",
                                                           "LiveTvChannel", "LiveTvProgram", "ChannelContent",
                                                           "Other"}
        assert all(any(p == root or p.startswith(root + "/") for root in paths)
                   for p in policy.get("excluded_subfolders") or [])
        for h in user["history"]:
            assert h.get("likes") in (True, False, None)
            s = by_key[h["series"]]
            assert h.get("library") is None or h["library"] in s["libraries"]
            for pos in (h["through"] if isinstance(h["through"], list) else None, h.get("resume")):
                if pos:
                    assert 1 <= pos[0] <= len(s["seasons"]) and 1 <= pos[1] <= s["seasons"][pos[0] - 1]
            assert h["through"] in ("all", None) or isinstance(h["through"], list)
            assert h["last_played"] is None or h["last_played"] <= LAST_ALLOWED


def test_sample_library_matches_the_schema(data):
    check_schema(data)
    assert 55 <= len(data["series"]) <= 60
    assert all(u["name"] == u["name"].lower() for u in data["users"])
    assert sum(sum(s["seasons"]) for s in data["series"]) < 3000


def test_sample_library_has_every_edge_case(data):
    series = data["series"]
    assert any("/" in s["name"] for s in series)
    assert any(s["name"].startswith(".") or ".." in s["name"] for s in series)
    assert any(any(ord(ch) > 0x2000 for ch in s["name"]) for s in series)  # emoji
    assert any(len(s["name"]) > 150 for s in series)
    assert any(all(ch in s["name"] for ch in '&<>"') for s in series)
    assert any(s["year"] is None for s in series)
    assert any(s.get("unnumbered_episodes") == 2 for s in series)
    assert any(s.get("multi_episode") == [1, 1] for s in series)
    assert any(s.get("specials", 0) >= 2 for s in series)
    assert any(s["studios"] == [] for s in series) and any(s["provider_ids"] == {} for s in series)
    assert any(s["libraries"] == ["TV Shows", "Kids TV"] for s in series)
    for cluster in ("Crime", "Science Fiction", "Comedy", "Documentary", "Fantasy", "Animation"):
        assert {s["status"] for s in series if cluster in s["genres"]} == {"Ended", "Continuing"}, cluster
    users = {u["name"]: u for u in data["users"]}
    assert users["frank"]["disabled"] and users["grace"]["history"] == [] and users["alice"]["admin"]
    assert len(users) >= 8


def test_histories_the_pipeline_tests_rely_on(data):
    by_key = {s["key"]: s for s in data["series"]}
    users = {u["name"]: {by_key[h["series"]]["name"]: h for h in u["history"]} for u in data["users"]}
    alice = users["alice"]
    assert alice["Breaking Bad"]["through"] == "all" and by_key["breaking-bad"]["status"] == "Ended"
    assert isinstance(alice["The Wire"]["through"], list)
    assert alice["Ozark"]["through"] is None and alice["Ozark"]["resume"]
    assert alice["The Sopranos"]["through"] == "all" and alice["The Sopranos"]["play_count"] >= 2
    assert alice["Mindhunter"]["through"] is None and alice["Mindhunter"]["favorite"]
    assert users["bob"]["Severance"]["through"] == "all" and by_key["severance"]["status"] == "Continuing"
    assert "Bluey" in users["dave"] and users["dave"]["Avatar: The Last Airbender"]["library"] == "Kids TV"


def test_access_rules_and_opinions_the_product_tests_rely_on(data):
    by_key = {s["key"]: s for s in data["series"]}
    users = {u["name"]: u for u in data["users"]}
    kid = users["kid"]
    assert not kid["admin"] and not kid["disabled"]
    assert kid["policy"] == {"libraries": ["Kids TV", "TV Shows"], "max_parental_rating": "TV-PG",
                             "block_unrated": ["Series"], "blocked_tags": ["scary"], "allowed_tags": [],
                             "excluded_subfolders": []}
    scary = [s for s in data["series"] if "scary" in s["tags"]]
    assert any("Kids TV" in s["libraries"] and RATING_VALUES[s["official_rating"].casefold()] <= 10 for s in scary)
    assert kid["history"] and all("Kids TV" in by_key[h["series"]]["libraries"] for h in kid["history"])
    assert not {h["series"] for h in kid["history"]} & {s["key"] for s in scary}
    # carol may not open Kids TV, though her comedy taste reaches its comedies (and Bluey is among the most
    # watched shows, which the popularity pool offers)
    assert users["carol"]["policy"] == {"libraries": ["TV Shows"]}
    assert {h["series"] for h in users["carol"]["history"]} <= {s["key"] for s in data["series"]
                                                               if "TV Shows" in s["libraries"]}
    assert any("Comedy" in s["genres"] and s["libraries"] == ["Kids TV"] for s in data["series"])
    viewers = Counter(h["series"] for u in data["users"] if not u["disabled"] for h in u["history"] if h["through"])
    top = max(viewers.values())
    assert any(by_key[key]["libraries"] == ["Kids TV"] for key, n in viewers.items() if n == top)
    assert all("policy" not in u for u in data["users"] if u["name"] not in ("kid", "carol"))
    # heidi disliked a show she did not finish and one she never started
    disliked = {h["series"]: h for h in users["heidi"]["history"] if h.get("likes") is False}
    assert isinstance(disliked["the-witcher"]["through"], list) and len(by_key["the-witcher"]["seasons"]) > 1
    assert disliked["seinfeld"]["through"] is None and not disliked["seinfeld"].get("resume")
    # erin dropped two shows: one or two episodes, long ago, not favourites
    cutoff = (datetime(2026, 11, 30, tzinfo=UTC) - timedelta(days=90)).isoformat().replace("+00:00", "Z")
    dropped = [h for h in users["erin"]["history"] if isinstance(h["through"], list) and h["through"][0] == 1
               and h["through"][1] <= 2 and h["last_played"] < cutoff and not h["favorite"]]
    assert {h["series"] for h in dropped} == {"boardwalk-empire", "love-hate"}


def test_each_users_latest_show_is_co_watched_by_another_active_user(data):
    """The offline hold-out (latest started series) must be reachable by collaborative filtering."""
    active = [u for u in data["users"] if not u["disabled"]]
    for user in active:
        started = [h for h in user["history"] if h["through"] or h.get("resume")]
        if len(started) < 3:
            continue
        latest = max(started, key=lambda h: h["last_played"])["series"]
        others = {h["series"] for u in active if u is not user for h in u["history"] if h["through"]}
        assert latest in others, (user["name"], latest)


@pytest.mark.parametrize("mode", ["jellyfin", "emby"])
def test_sample_library_loads_into_server_state(data, mode):
    state = build_state(data, mode)
    kinds = Counter(item.type for item in state.items.values())
    copies = sum(len(s["libraries"]) for s in data["series"])
    assert kinds["Series"] == copies
    expected = sum(len(s["libraries"]) * (sum(s["seasons"]) + s.get("specials", 0) + s.get("unnumbered_episodes", 0)
                                          - (1 if s.get("multi_episode") else 0)) for s in data["series"])
    assert kinds["Episode"] == expected
    assert len(state.users) == len(data["users"]) and len(state.folders) == len(data["libraries"])
    assert any(d.played and d.play_count >= 2 for d in state.user_data.values())
    assert any(d.position_ticks for d in state.user_data.values())


def test_synthetic_is_deterministic_hits_its_target_and_loads():
    first = synthetic.generate(200, 8000, 10, seed=1)
    assert first == synthetic.generate(200, 8000, 10, seed=1)
    assert first != synthetic.generate(200, 8000, 10, seed=2)
    check_schema(first)
    episodes = sum(sum(s["seasons"]) + s.get("specials", 0) for s in first["series"])
    assert abs(episodes - 8000) <= 160
    assert len(first["series"]) == 200 and len(first["users"]) == 10
    assert len({s["name"] for s in first["series"]}) == 200
    assert any("Kids TV" in s["libraries"] for s in first["series"])
    state = build_state(first, "jellyfin")
    assert sum(item.type == "Series" for item in state.items.values()) == sum(
        len(s["libraries"]) for s in first["series"])


@pytest.mark.parametrize("mode", ["jellyfin", "emby"])
def test_access_rules_scale_and_dislikes_over_http(data, mode):
    emby = mode == "emby"
    headers = {"X-Emby-Token": "k"} if emby else {
        "Authorization": 'MediaBrowser Client="t", Device="t", DeviceId="t", Version="1", Token="k"'}
    with SampleServer(data, mode=mode, api_key="k") as server, \
            httpx.Client(base_url=server.url + ("/emby" if emby else ""), headers=headers) as http:
        def get(path: str, **params) -> object:
            response = http.get(path, params=params)
            assert response.status_code == 200, (path, response.text)
            return response.json()

        def series(user_id: str, filters: str | None = None) -> list[dict]:
            if emby:
                extra = {"Filters": filters} if filters else {}
                return get(f"/Users/{user_id}/Items", IncludeItemTypes="Series", Recursive="true",
                           Fields="Tags,OfficialRating", **extra)["Items"]
            extra = {"filters": filters} if filters else {}
            return get("/Items", userId=user_id, includeItemTypes="Series", recursive="true", fields="Tags",
                       **extra)["Items"]

        listed = get("/Users/Query")["Items"] if emby else get("/Users")
        ids = {u["Name"]: u["Id"] for u in listed}
        scale = {r["Name"]: r["Value"] for r in get("/Localization/ParentalRatings")}
        kid = get(f"/Users/{ids['kid']}")["Policy"]
        carol = get(f"/Users/{ids['carol']}")["Policy"]
        kid_series, carol_series = series(ids["kid"]), series(ids["carol"])
        kid_played = get(f"/Users/{ids['kid']}/Items", IncludeItemTypes="Episode", Recursive="true",
                         IsPlayed="true")["Items"] if emby else get(
            "/Items", userId=ids["kid"], includeItemTypes="Episode", recursive="true", isPlayed="true")["Items"]
        disliked = series(ids["heidi"], "Dislikes")
        everything = get("/Items", IncludeItemTypes="Series", Recursive="true")["Items"]

    folders = {f["Name"]: str(f.get("Guid") or f["ItemId"]) for f in server.state.folders}
    assert scale["TV-PG"] == 10 and scale["TV-Y7"] == 7 and scale["TV-MA"] == 17
    assert kid["EnableAllFolders"] is False and sorted(kid["EnabledFolders"]) == sorted(
        [folders["Kids TV"], folders["TV Shows"]])
    assert kid["MaxParentalRating"] == scale["TV-PG"] and kid["BlockUnratedItems"] == ["Series"]
    assert kid["BlockedTags"] == ["scary"] and not kid["IsAdministrator"]
    assert carol["EnableAllFolders"] is False and carol["EnabledFolders"] == [folders["TV Shows"]]
    assert "MaxParentalRating" not in carol and carol["BlockedTags"] == []

    title = {s["key"]: s["name"] for s in data["series"]}
    names = {i["Name"] for i in kid_series}
    assert {title["bluey"], title["hilda"], title["paw-patrol"], title["adventure-time"]} <= names
    assert title["gravity-falls"] not in names  # TV-Y7, but tagged scary
    assert title["backyard-birds-live"] not in names  # unrated
    assert all(scale[i["OfficialRating"]] <= 10 for i in kid_series)
    assert kid_played and {e["SeriesName"] for e in kid_played} <= names
    assert title["bluey"] not in {i["Name"] for i in carol_series}  # Kids TV only
    assert title["avatar-the-last-airbender"] in {i["Name"] for i in carol_series}  # its TV Shows copy
    assert sorted(i["Name"] for i in disliked) == sorted([title["seinfeld"], title["the-witcher"]])
    assert all(i["UserData"]["Likes"] is False for i in disliked)
    assert {title["gravity-falls"], title["bluey"], title["backyard-birds-live"]} <= {i["Name"] for i in everything}


# -- flavours: which server and version the sample server imitates ------------------------------------------
def test_flavours_resolve_to_the_spec_versions(data):
    assert resolve_flavour("jellyfin") == ("jellyfin", "10.11.11") and resolve_flavour("emby") == ("emby", "4.8.11.0")
    assert resolve_flavour("jellyfin", "12") == ("jellyfin", "12.0.0")
    assert resolve_flavour("jellyfin", "10.10") == ("jellyfin", "10.10.7")
    assert resolve_flavour("emby", "4.9") == ("emby", "4.9.0.41")
    assert resolve_flavour("jellyfin", "10.11.8") == ("jellyfin", "10.11.8")  # any other version is kept
    for mode, version in (("plex", None), ("jellyfin12", None), ("emby", "latest")):
        with pytest.raises(ValueError):
            resolve_flavour(mode, version)
    server = SampleServer(data, mode="emby", version="4.9")
    assert (server.mode, server.version, server.state.version) == ("emby", "4.9.0.41", "4.9.0.41")
    assert (SampleServer(data).mode, SampleServer(data).version) == ("jellyfin", DEFAULT_VERSIONS["jellyfin"])
    assert not server.state.has_blocked_folders and server.state.legacy_auth
    jellyfin12 = SampleServer(data, version="12").state
    assert not jellyfin12.legacy_auth and jellyfin12.strict_library_names and not jellyfin12.has_user_items_path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_command_line_serves_the_chosen_flavour():
    port = _free_port()
    command = [sys.executable, "-m", "aperture_dev.sample_server", "--mode", "jellyfin", "--version", "12",
               "--port", str(port), "--api-key", "k"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert "sample jellyfin 12.0.0 server at" in line, line
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/System/Info/Public").json()["Version"] == "12.0.0"
        header = 'MediaBrowser Client="t", Device="t", DeviceId="t", Version="1", Token="k"'
        assert httpx.get(f"{url}/System/Info", headers={"Authorization": header}).status_code == 200
        assert httpx.get(f"{url}/System/Info", headers={"X-Emby-Token": "k"}).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
    refused = subprocess.run([*command[:5], "--version", "banana"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "banana" in refused.stderr
