"""Contract tests: every request aperture's media-server clients send, and every response the sample server
returns to them, validates against the real OpenAPI specs of Jellyfin 10.10, 10.11 and 12.0 and Emby 4.8 and 4.9.

The clients are driven through every call they have against a recording SampleServer of the spec's own
flavour (`SampleServer(mode=..., version=spec version)`: Jellyfin 10.10, 10.11 and 12, Emby 4.8 and 4.9); the
server's record (method, path, query, body, status, response) is then checked request by request with
openapi-core (see openapi.py for the handful of documented spec quirks), and every series field the picks
library writes must have come back to the client. What each flavour refuses or leaves out is pinned in
test_flavours.py. The sample server's routes the clients do not call
(yet), among them the parental rating scale, user policies with parental controls and the Likes/Dislikes
filters, are exercised with direct HTTP requests and checked the same way. Negative controls prove the
validator is live.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from aperture_dev.sample_server import SAMPLE_LIBRARY, SampleServer, load_sample_library
from aperture_dev.sample_server.model import version_tuple

from aperture_assets.logic.watch_rows import WATCH_FIELDS
from aperture_resources.media_server import EmbyClient, JellyfinClient, MediaServerClient
from aperture_resources.media_server.base import EPISODE_FIELDS, SEASON_FIELDS

from .openapi import SPECS, Contract, ContractError, contract

API_KEY = "contract-key"

# Every operation each client must hit in one full drive; a client that silently skips a call fails the test.
CLIENT_OPERATIONS = {
    "jellyfin": {
        "GET /System/Info", "GET /Users", "GET /Library/VirtualFolders", "GET /Items", "GET /UserItems/Resume",
        "GET /Users/{userId}", "POST /Users/{userId}/Policy", "POST /Library/VirtualFolders",
        "POST /Items/{itemId}/Refresh", "POST /UserPlayedItems/{itemId}", "DELETE /Library/VirtualFolders",
    },
    "emby": {
        "GET /System/Info", "GET /Users/Query", "GET /Library/VirtualFolders/Query", "GET /Items",
        "GET /Users/{UserId}/Items", "GET /Users/{UserId}/Items/Resume", "GET /Users/{Id}",
        "POST /Users/{Id}/Policy", "POST /Library/VirtualFolders", "POST /Items/{Id}/Refresh",
        "POST /Users/{UserId}/PlayedItems/{Id}", "POST /Library/VirtualFolders/Delete",
    },
}


# A small library with the edge cases the real servers produce (DATA_SCHEMA.md).
SMALL_LIBRARY = {
    "libraries": [
        {"name": "TV Shows", "collection_type": "tvshows", "path": "/media/tv"},
        {"name": "Kids TV", "collection_type": "tvshows", "path": "/media/kids"},
        {"name": "Movies", "collection_type": "movies", "path": "/media/movies"},
    ],
    "series": [
        {"key": "harbour-lights", "libraries": ["TV Shows"], "name": "Harbour Lights", "year": 2015,
         "end_year": 2018, "status": "Ended", "studios": ["North Coast"], "genres": ["Drama", "Mystery"],
         "tags": ["coastal town"], "official_rating": "TV-14", "community_rating": 7.9,
         "provider_ids": {"Tvdb": "900001", "Imdb": "tt9000001", "Tmdb": "90001"}, "seasons": [4, 3],
         "specials": 2, "runtime_minutes": 44, "first_aired": "2015-03-02", "overview": "Keepers and secrets."},
        {"key": "the-long-shift", "libraries": ["TV Shows"], "name": "The Long Shift", "sort_name": "Long Shift",
         "original_title": "La Longue Garde", "year": 2021, "end_year": None, "status": "Continuing",
         "studios": [], "genres": ["Comedy"], "tags": [], "official_rating": None, "community_rating": None,
         "provider_ids": {"Tvdb": "900002"}, "seasons": [5], "specials": 0, "runtime_minutes": 22,
         "multi_episode": [1, 2], "unnumbered_episodes": 1, "overview": "Night shift at a hospital."},
        {"key": "paper-kites", "libraries": ["Kids TV", "TV Shows"], "name": "Paper Kites", "year": None,
         "status": "Ended", "studios": ["Kite Works", "Second Studio"], "genres": ["Animation", "Family"],
         "tags": ["friendship"], "official_rating": "TV-Y", "community_rating": 8.1,
         "provider_ids": {"Tmdb": "90003"}, "seasons": [3, 3], "specials": 1, "runtime_minutes": 11,
         "overview": "Kids build kites."},
    ],
    "users": [
        {"name": "alice", "admin": True, "disabled": False, "history": [
            {"series": "harbour-lights", "through": "all", "play_count": 2, "last_played": "2026-02-01T20:00:00Z",
             "favorite": True},
            {"series": "the-long-shift", "through": [1, 3], "last_played": "2026-03-01T21:00:00Z",
             "resume": [1, 4, 35]},
        ]},
        {"name": "bob", "admin": False, "disabled": False, "history": [
            {"series": "paper-kites", "library": "Kids TV", "through": [1, 2], "last_played": "2026-01-10T08:00:00Z",
             "resume": [1, 3, 60], "favorite": True, "likes": True},
            {"series": "harbour-lights", "through": [1, 4], "last_played": "2025-12-24T19:00:00Z", "likes": False},
            {"series": "the-long-shift", "through": None, "last_played": None, "likes": False},  # never started
        ]},
        {"name": "carol", "admin": False, "disabled": False, "history": [], "policy": {
            "libraries": ["Kids TV", "TV Shows"], "max_parental_rating": "TV-PG", "block_unrated": ["Series"],
            "blocked_tags": ["storms"], "allowed_tags": ["friendship", "coastal town"],
            "excluded_subfolders": ["/media/tv/Paper Kites"]}},
        {"name": "dave", "admin": False, "disabled": True, "history": [
            {"series": "paper-kites", "through": "all", "last_played": "2025-06-01T10:00:00Z"},
        ]},
    ],
}

LIBRARIES = {
    "small": (lambda: copy.deepcopy(SMALL_LIBRARY), 2),
    "bundled": (load_sample_library, 250),
}


def _library_params() -> list:
    small = pytest.param("small", id="small")
    bundled = pytest.param("bundled", id="bundled", marks=pytest.mark.skipif(
        not SAMPLE_LIBRARY.exists(), reason="sample_library.json not written yet"))
    return [small, bundled]


@pytest.fixture(params=list(SPECS))
def spec(request) -> Contract:
    return contract(request.param)


class SentLog:
    """What the client put on the wire, keyed like the server's record, to validate auth headers too."""

    def __init__(self) -> None:
        self.headers: dict[tuple, dict[str, str]] = {}

    def hook(self, request: httpx.Request) -> None:
        key = (request.method, request.url.path, tuple(parse_qsl(request.url.query.decode(), keep_blank_values=True)))
        self.headers[key] = {"Authorization": request.headers.get("authorization", ""),
                             "X-Emby-Token": request.headers.get("x-emby-token", "")}
        self.headers[key] = {k: v for k, v in self.headers[key].items() if v}


def _client(spec: Contract, server: SampleServer, page_size: int, log: SentLog) -> MediaServerClient:
    cls = EmbyClient if spec.info.mode == "emby" else JellyfinClient
    return cls(server.url, API_KEY, page_size=page_size, concurrency=2, retries=1, timeout=30,
               event_hooks={"request": [log.hook]})


@pytest.fixture
def picks_dir(tmp_path: Path) -> Path:
    """A picks library folder on disk with one series in it, as aperture's library stage writes them."""
    season = tmp_path / "picks" / "Harbour Lights (2015)" / "Season 1"
    season.mkdir(parents=True)
    (season.parent / "tvshow.nfo").write_text("<tvshow><title>Harbour Lights</title></tvshow>", encoding="utf-8")
    (season / "Harbour Lights - S01E01.strm").write_text("http://127.0.0.1:1/stream/1\n", encoding="utf-8")
    return tmp_path / "picks"


def drive(client: MediaServerClient, server: SampleServer, picks: Path) -> dict:
    """Every call the client has, used the way the pipeline uses it; returns what came back, for sanity checks."""
    seen: dict = {"info": client.system_info(), "users": client.users(), "folders": client.libraries()}
    tv = [f for f in seen["folders"] if f.get("CollectionType") == "tvshows"]
    series, episodes = [], []
    for folder in tv:  # the catalog stage
        library_id = str(folder.get("ItemId") or folder.get("Id"))
        series += client.items("Series", library_id, client.series_fields())
        client.items("Season", library_id, SEASON_FIELDS)
        episodes += client.episodes(library_id, client.episode_fields())
    seen |= {"series": series, "episodes": episodes, "played": [], "resume": [], "favorites": []}
    active = [u for u in seen["users"] if not (u.get("Policy") or {}).get("IsDisabled")]
    for user in active:  # the watch-history stage
        uid = user["Id"]
        seen["played"] += client.user_items(uid, "Episode", WATCH_FIELDS, isPlayed=True, sortBy=["DatePlayed"])
        seen["resume"] += client.resume_items(uid, WATCH_FIELDS)
        seen["favorites"] += client.user_items(uid, "Episode", WATCH_FIELDS, isFavorite=True)
        seen["favorites"] += client.user_items(uid, "Series", WATCH_FIELDS, isFavorite=True)
        seen["favorites"] += client.user_items(uid, ["Episode", "Series"], WATCH_FIELDS, isFavorite=True)
    # incremental watch sync as media-servers.md recommends it: newest plays first, one page at a time
    client.user_items(active[0]["Id"], "Episode", WATCH_FIELDS, isPlayed=True, sortBy=["DatePlayed"],
                      sortOrder=["Descending"])
    window, total = client.user_items_page(active[0]["Id"], "Episode", WATCH_FIELDS, 0, 2, isPlayed=True,
                                           sortBy=["DatePlayed"], sortOrder=["Descending"])
    assert len(window) <= 2 and total is not None and total >= len(window)
    seen["by_id"] = client.items_by_id([s["Id"] for s in series[:5]] + [e["Id"] for e in episodes[:3]],
                                       ["ProviderIds"])

    # the library stage: a picks library, visible to one user only
    target = next(u for u in active if not u["Policy"].get("IsAdministrator"))
    name = f"Picks {target['Name']}"
    client.create_library(name, str(picks))
    created = next(f for f in client.libraries() if f["Name"] == name)
    folder_key = created.get("Guid") or created["ItemId"]  # Emby's permissions name the library Guid
    user = client.user(target["Id"])
    policy = {**user["Policy"], "EnableAllFolders": False,
              "EnabledFolders": [*user["Policy"].get("EnabledFolders", []), folder_key]}
    client.set_user_policy(target["Id"], policy)
    client.refresh_item(str(created["ItemId"]))
    seen["picks"] = client.items("Episode", str(created["ItemId"]), EPISODE_FIELDS)
    client.mark_played(target["Id"], seen["picks"][0]["Id"], datetime(2026, 4, 1, 20, 30, tzinfo=UTC))
    client.mark_played(target["Id"], episodes[0]["Id"])
    seen["target"], seen["policy_after"] = target, client.user(target["Id"])["Policy"]
    client.delete_library(created)  # a disabled or removed user's library goes away
    seen["after_delete"] = [f["Name"] for f in client.libraries()]
    return seen


def check_record(spec: Contract, server: SampleServer, log: SentLog) -> tuple[Counter, list[str]]:
    """Validate every recorded request and response; returns (operations seen, distinct failures)."""
    operations: Counter = Counter()
    failures: dict[str, None] = {}
    for rec in server.requests:
        headers = log.headers.get((rec.method, rec.raw_path, tuple(rec.query)))
        if headers is None:
            failures[f"{rec.method} {rec.raw_path}: recorded by the server but not sent by the client"] = None
            continue
        if spec.info.mode == "emby" and headers.get("X-Emby-Token") != API_KEY:
            failures[f"{rec.method} {rec.raw_path}: no X-Emby-Token header"] = None
        if not 200 <= rec.status < 300:
            failures[f"{rec.method} {rec.raw_path}: HTTP {rec.status} {rec.response!r:.200}"] = None
            continue
        try:
            operations[spec.validate_request(rec.method, rec.raw_path, rec.query, rec.body, headers)] += 1
        except ContractError as exc:
            failures[str(exc)] = None
        try:
            spec.validate_response(rec.method, rec.raw_path, rec.query, rec.status, rec.response, headers)
        except ContractError as exc:
            failures[str(exc)] = None
    return operations, list(failures)


def direct_call_failures(server: SampleServer, spec: Contract, headers: dict) -> list[str]:
    """Every recorded request made straight to the server (not by a client) must succeed, and each request and
    response validate against the spec; returns the contract failures."""
    failures = []
    for rec in server.requests:
        assert 200 <= rec.status < 300, (rec.method, rec.raw_path, rec.status, rec.response)
        try:
            spec.validate_request(rec.method, rec.raw_path, rec.query, rec.body, headers)
            spec.validate_response(rec.method, rec.raw_path, rec.query, rec.status, rec.response, headers)
        except ContractError as exc:
            failures.append(str(exc))
    return failures


@pytest.mark.parametrize("library", _library_params())
def test_client_traffic_matches_spec(spec: Contract, library: str, picks_dir: Path) -> None:
    load, page_size = LIBRARIES[library]
    log = SentLog()
    with SampleServer(load(), mode=spec.info.mode, api_key=API_KEY, record=True, version=spec.info.version) as server:
        with _client(spec, server, page_size, log) as client:
            seen = drive(client, server, picks_dir)
        operations, failures = check_record(spec, server, log)
        recorded = list(server.requests)

    assert not failures, f"{len(failures)} contract violation(s) against {spec.info.file}:\n" + "\n".join(failures[:25])
    missing = CLIENT_OPERATIONS[spec.info.mode] - set(operations)
    assert not missing, f"the clients never called {sorted(missing)}"
    assert set(operations) <= CLIENT_OPERATIONS[spec.info.mode], f"unexpected operations {set(operations)}"
    assert sum(operations.values()) == len(recorded) >= 30

    # the drive exercised what it claims: paging, every filter, the writes
    pages = [r for r in recorded if r.path.endswith("/Items") and dict(r.query).get(_p(spec, "startIndex"), "0") != "0"]
    assert pages, "no request ever asked for a second page"
    assert seen["played"] and seen["resume"] and seen["favorites"] and seen["by_id"] and seen["picks"]
    assert f"Picks {seen['target']['Name']}" not in seen["after_delete"]
    assert any("IndexNumberEnd" in e for e in seen["episodes"])  # a multi-episode file
    assert any("IndexNumber" not in e for e in seen["episodes"])  # an episode without a number
    assert seen["policy_after"]["EnableAllFolders"] is False
    sent = {(r.method, r.path.split("/")[1]) for r in recorded}
    assert ("POST", "Library") in sent and ("POST", "Items") in sent
    assert server.state.version == spec.info.version and (server.mode, spec.info.mode) == (spec.info.mode,) * 2
    assert_series_fields(seen["series"], load())


# What the picks library writes of a series (folder name and tvshow.nfo), as BaseItemDto properties.
LIBRARY_SERIES_FIELDS = ("Name", "ProductionYear", "Overview", "Genres", "Studios", "Status", "OfficialRating",
                         "CommunityRating", "PremiereDate", "EndDate", "ProviderIds", "OriginalTitle")


def assert_series_fields(series: list[dict], data: dict) -> None:
    """Every series field the library writes came back to the client's catalog read, with the data's value:
    on Emby that takes asking for each of them in `Fields`."""
    source = {s["name"]: s for s in data["series"]}
    checked = Counter()
    for item in series:
        s = source[item["Name"]]
        expected = {
            "ProductionYear": s.get("year"), "Overview": s.get("overview"), "Genres": s.get("genres"),
            "Studios": s.get("studios"), "Status": s.get("status"), "OfficialRating": s.get("official_rating"),
            "CommunityRating": s.get("community_rating"), "OriginalTitle": s.get("original_title"),
            "ProviderIds": s.get("provider_ids"),
            "PremiereDate": s.get("first_aired") or (f"{s['year']}-01-01" if s.get("year") else None),
            "EndDate": f"{s['end_year']}-12-31" if s.get("end_year") else None,
        }
        got = {k: item.get(k) for k in expected} | {
            "Studios": [x["Name"] for x in item.get("Studios") or []],
            "PremiereDate": (item.get("PremiereDate") or "")[:10],
            "EndDate": (item.get("EndDate") or "")[:10],
        }
        expected, got = ({k: v or None for k, v in d.items()} for d in (expected, got))  # empty = absent
        assert got == expected, (item["Name"], {k: (got[k], v) for k, v in expected.items() if got[k] != v})
        checked.update(k for k, v in expected.items() if v)
    missing = set(LIBRARY_SERIES_FIELDS) - {"Name"} - set(checked)
    assert not missing, f"no series in the library has {sorted(missing)}: the check is not exercised"


def _p(spec: Contract, name: str) -> str:
    return name[:1].upper() + name[1:] if spec.info.mode == "emby" else name


# -- the sample server's other routes (not used by the clients, used by tests and the demo) --------------
@pytest.fixture
def small_server(spec: Contract) -> Iterator[SampleServer]:
    with SampleServer(copy.deepcopy(SMALL_LIBRARY), mode=spec.info.mode, api_key=API_KEY, record=True,
                      version=spec.info.version) as server:
        yield server


def test_sample_server_extra_routes_match_spec(spec: Contract, small_server: SampleServer, tmp_path: Path) -> None:
    emby = spec.info.mode == "emby"
    prefix = "/emby" if emby else ""
    headers = {"X-Emby-Token": API_KEY} if emby else {
        "Authorization": f'MediaBrowser Client="t", Device="t", DeviceId="t", Version="1", Token="{API_KEY}"'}
    state = small_server.state
    user_id = next(iter(state.users))
    episode = next(i.id for i in state.items.values() if i.type == "Episode")
    state.create_folder("Scratch", "tvshows", [str(tmp_path)])
    cls = EmbyClient if emby else JellyfinClient
    with cls(small_server.url, API_KEY) as client:  # the poster path aperture stores, on this server (no request)
        poster = httpx.URL(client.base_url + client.poster_path(episode, "abc123", max_width=400))
    calls = [
        ("GET", "/System/Info/Public", {}, None),
        ("POST", "/Library/Refresh", {}, None),
        ("GET", poster.path.removeprefix(prefix), dict(parse_qsl(poster.query.decode())), None),
    ]
    if emby:
        calls += [("DELETE", f"/Users/{user_id}/PlayedItems/{episode}", {}, None),
                  ("POST", "/Library/VirtualFolders/Delete", {}, {"Name": "Scratch"})]
    else:
        calls += [("DELETE", f"/UserPlayedItems/{episode}", {"userId": user_id}, None),
                  ("DELETE", "/Library/VirtualFolders", {"name": "Scratch"}, None)]
    with httpx.Client(base_url=small_server.url + prefix, headers=headers) as http:
        for method, path, params, body in calls:
            http.request(method, path, params=params, json=body)
    failures = direct_call_failures(small_server, spec, headers)
    assert len(small_server.requests) == len(calls)
    assert not failures, "\n".join(failures)


# -- negative controls: the validator is live ------------------------------------------------------------
def test_validator_rejects_malformed_traffic(spec: Contract, small_server: SampleServer) -> None:
    emby = spec.info.mode == "emby"
    log = SentLog()
    with _client(spec, small_server, 100, log) as client:
        users = client.users()
        library = str(client.libraries()[0]["ItemId"])
        client.items("Series", library, client.series_fields())
    by_path = {r.path: r for r in small_server.requests}
    users_rec = by_path["/Users/Query" if emby else "/Users"]
    items_rec = by_path["/Items"]
    # the genuine traffic passes ...
    spec.validate_response("GET", users_rec.raw_path, users_rec.query, 200, users_rec.response)
    spec.validate_response("GET", items_rec.raw_path, items_rec.query, 200, items_rec.response)

    # ... and each corruption fails
    bad_users = json.loads(json.dumps(users_rec.response))
    listed = bad_users["Items"] if emby else bad_users
    if emby:  # Emby's schemas allow unknown properties; a wrong type still fails
        listed[0]["HasPassword"] = "yes"
    else:  # Jellyfin DTOs are additionalProperties: false, so a misspelled field fails
        listed[0]["LastActivtyDate"] = listed[0].pop("LastActivityDate")
    bad_page = json.loads(json.dumps(items_rec.response))
    bad_page["Items"][0]["Type"] = "TelevisionSeries"  # not a BaseItemKind
    bad_page["TotalRecordCount"] = str(bad_page["TotalRecordCount"])
    for rec, payload in ((users_rec, bad_users), (items_rec, bad_page), (items_rec, {"Items": "none"})):
        with pytest.raises(ContractError):
            spec.validate_response("GET", rec.raw_path, rec.query, 200, payload)

    uid = users[0]["Id"]
    start = _p(spec, "startIndex")
    bad_requests = [
        ("GET", items_rec.raw_path, [(k, "first" if k == start else v) for k, v in items_rec.query]),  # not an int
        ("GET", items_rec.raw_path, [*items_rec.query, (start, "5")]),  # a scalar sent twice
        ("GET", items_rec.raw_path, [*items_rec.query, ("includeItemTypez", "Series")]),  # undeclared parameter
        ("POST", f"{spec.server_url.removeprefix(spec.host_url)}/Library/Nope", []),  # not in the spec
    ]
    if emby:
        bad_requests.append(("GET", f"/emby/Users/{uid}/Items", [("UserId", "x")]))  # undeclared (path param)
    else:
        bad_requests += [
            ("GET", "/Items", [("userId", "alice")]),  # not a GUID
            ("GET", "/Items", [("fields", "ProviderIds"), ("fields", "Providerids2")]),  # not an ItemFields value
        ]
    headers = {"Authorization": "MediaBrowser Token=x"}
    for method, path, query in bad_requests:
        with pytest.raises(ContractError):
            spec.validate_request(method, path, query, None, headers)
    policy_path = f"{'/emby' if emby else ''}/Users/{uid}/Policy"
    full = {**users[0]["Policy"], "EnableAllFolders": "no"}  # wrong type
    bodies = [full] if emby else [full, {"EnableAllFolders": False}]  # Jellyfin: a partial policy lacks required ids
    for body in bodies:
        with pytest.raises(ContractError):
            spec.validate_request("POST", policy_path, [], body, headers)
    spec.validate_request("POST", policy_path, [], users[0]["Policy"], headers)  # while the real one passes
    if not emby:  # the Jellyfin spec's security requirement is enforced (Emby's is stripped, see openapi.py)
        with pytest.raises(ContractError):
            spec.validate_request("GET", "/Items", [], None, {})


# -- access rules, the rating scale and likes: routes the clients do not call yet ---------------------------
def _headers(spec: Contract) -> dict[str, str]:
    if spec.info.mode == "emby":
        return {"X-Emby-Token": API_KEY}
    return {"Authorization": f'MediaBrowser Client="t", Device="t", DeviceId="t", Version="1", Token="{API_KEY}"'}


def _series_read(spec: Contract, user_id: str, filters: str | None = None) -> tuple[str, dict]:
    """A user's series read as each flavour spells it (Jellyfin: /Items?userId=, array params; Emby: the user's
    items path, free-text Fields and Filters)."""
    if spec.info.mode == "emby":
        params = {"IncludeItemTypes": "Series", "Recursive": "true", "Fields": "Tags,OfficialRating",
                  **({"Filters": filters} if filters else {})}
        return f"/Users/{user_id}/Items", params
    params = {"userId": user_id, "includeItemTypes": "Series", "recursive": "true", "fields": ["Tags", "Path"],
              "enableUserData": "true", **({"filters": filters.split(",")} if filters else {})}
    return "/Items", params


def test_access_rules_scale_and_likes_match_spec(spec: Contract, small_server: SampleServer) -> None:
    emby = spec.info.mode == "emby"
    prefix = "/emby" if emby else ""
    headers = _headers(spec)
    state = small_server.state
    ids = {u.name: u.id for u in state.users.values()}
    version = version_tuple(spec.info.version)
    scored = not emby and version >= (10, 11)  # RatingScore exists from Jellyfin 10.11
    with httpx.Client(base_url=small_server.url + prefix, headers=headers) as http:
        def get(path: str, params: dict | None = None) -> Any:
            response = http.get(path, params=params or {})
            assert response.status_code == 200, (path, response.status_code, response.text)
            return response.json()

        scale = get("/Localization/ParentalRatings")
        carol = get(f"/Users/{ids['carol']}")
        policy = carol["Policy"]
        edited = {**policy, "BlockedTags": ["storms", "sharks"], "MaxParentalRating": 14}
        assert http.post(f"/Users/{ids['carol']}/Policy", json=edited).status_code == 204
        after = get(f"/Users/{ids['carol']}")["Policy"]
        carol_series = get(*_series_read(spec, ids["carol"]))["Items"]
        disliked = get(*_series_read(spec, ids["bob"], "Dislikes"))["Items"]
        liked = get(*_series_read(spec, ids["bob"], "Likes"))["Items"]
        everything = get("/Items", {"IncludeItemTypes" if emby else "includeItemTypes": "Series",
                                    "Recursive" if emby else "recursive": "true"})["Items"]

    failures = direct_call_failures(small_server, spec, headers)
    assert not failures, "\n".join(failures)
    assert len(small_server.requests) == 8

    # the scale: Jellyfin's US values, RatingScore only where the spec has it
    values = {r["Name"]: r["Value"] for r in scale}
    assert values["TV-Y"] == 0 and values["TV-Y7"] == 7 and values["TV-PG"] == 10 and values["TV-14"] == 14
    assert values["TV-MA"] == 17 and values["NC-17"] == 18
    assert all(("RatingScore" in r) == scored for r in scale)
    # the policy, as this flavour names its fields
    guids = {f["Name"]: str(f.get("Guid") or f["ItemId"]) for f in state.folders}
    assert policy["EnableAllFolders"] is False and sorted(policy["EnabledFolders"]) == sorted(
        [guids["Kids TV"], guids["TV Shows"]])
    assert policy["MaxParentalRating"] == 10 and policy["BlockUnratedItems"] == ["Series"]
    assert policy["BlockedTags"] == ["storms"]
    if emby:
        assert policy["IncludeTags"] == ["friendship", "coastal town"] and policy["IsTagBlockingModeInclusive"]
        assert "AllowedTags" not in policy
        assert policy["ExcludedSubFolders"] == [f"{guids['TV Shows']}_/media/tv/Paper Kites"]
        assert ("BlockedMediaFolders" in policy) == (version < (4, 9))
    else:
        assert policy["AllowedTags"] == ["friendship", "coastal town"] and policy["BlockedMediaFolders"] == []
        assert not {"IncludeTags", "ExcludedSubFolders", "IsTagBlockingModeInclusive"} & policy.keys()
    assert after == edited  # the whole policy is written back as posted
    # carol's reads obey her (edited) policy: harbour-lights is TV-14 (now allowed), the-long-shift unrated
    # (blocked), paper-kites TV-Y and tagged friendship: the Kids TV copy, and on Emby not the excluded TV copy
    seen = Counter(i["Name"] for i in carol_series)
    assert seen == Counter({"Harbour Lights": 1, "Paper Kites": 1 if emby else 2})
    assert len(everything) == 4  # an admin read without a user sees every copy
    # likes: the filters and UserData.Likes
    assert sorted(i["Name"] for i in disliked) == ["Harbour Lights", "The Long Shift"]
    assert all(i["UserData"]["Likes"] is False for i in disliked)
    assert [i["Name"] for i in liked] == ["Paper Kites"] and liked[0]["UserData"]["Likes"] is True
    # Emby sends OfficialRating and tags only when Fields names them, tags as TagItems (and Tags up to 4.8)
    harbour = next(i for i in carol_series if i["Name"] == "Harbour Lights")
    assert harbour["OfficialRating"] == "TV-14"
    if emby:
        assert harbour["TagItems"][0]["Name"] == "coastal town"
        assert ("Tags" in harbour) == (version < (4, 9))
        assert all("OfficialRating" not in i for i in everything)
    else:
        assert harbour["Tags"] == ["coastal town"]

    # negative controls for the new shapes
    with pytest.raises(ContractError):
        spec.validate_response("GET", f"{prefix}/Localization/ParentalRatings", [], 200,
                               [{"Name": "TV-PG", "Value": "ten"}])
    if not emby:
        with pytest.raises(ContractError):  # not an ItemFilter
            spec.validate_request("GET", "/Items", [("userId", ids["bob"]), ("filters", "Dislike")], None, headers)
        with pytest.raises(ContractError):  # Emby's allow-list field is not in Jellyfin's UserPolicy
            spec.validate_request("POST", f"/Users/{ids['carol']}/Policy", [], {**policy, "IncludeTags": []},
                                  headers)
        if not scored:  # 10.10's ParentalRating has no RatingScore (additionalProperties: false)
            with pytest.raises(ContractError):
                spec.validate_response("GET", "/Localization/ParentalRatings", [], 200,
                                       [{"Name": "TV-PG", "Value": 10, "RatingScore": {"score": 10}}])
