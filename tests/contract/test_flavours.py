"""What each sample server flavour refuses or leaves out, as its real server does, checked against the flavour's
own spec where the spec says it (and with the product's clients where they are involved).

- Jellyfin 12: legacy authorization off (only `Authorization: MediaBrowser ... Token=` and `ApiKey` work;
  `X-Emby-Token`, `X-MediaBrowser-Token`, `X-Emby-Authorization` and `api_key` are 401), library names with
  whitespace at either end refused (400; the spec's `pattern`), `UserData.Key` required.
- Jellyfin 10.11 and 12: no `/Users/{id}/Items` (404).
- Emby 4.8 and 4.9: a series' year, dates, status and ratings only when `Fields` names them.
- Emby 4.9: the `IsSpecialSeason` filter (4.8's spec does not declare it and its server ignores it).
- Every flavour: the product's strm URLs (`client.stream_url_template(key)`) play; Jellyfin's carry `ApiKey`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from aperture_dev.sample_server import SampleServer
from aperture_dev.sample_server.model import EMBY_ASKED_SERIES_FIELDS, version_tuple

from aperture_resources.media_server import EmbyClient, JellyfinClient

from .openapi import SPECS, Contract, ContractError, contract
from .test_contract import API_KEY, SMALL_LIBRARY, SentLog, _client, _headers, check_record

COMPLETE = f'MediaBrowser Client="t", Device="t", DeviceId="t", Version="1", Token="{API_KEY}"'


@pytest.fixture(params=list(SPECS))
def spec(request) -> Contract:
    return contract(request.param)


@pytest.fixture
def server(spec: Contract) -> Iterator[SampleServer]:
    with SampleServer(copy.deepcopy(SMALL_LIBRARY), mode=spec.info.mode, api_key=API_KEY, record=True,
                      version=spec.info.version) as running:
        yield running


def _jellyfin12(spec: Contract) -> bool:
    return spec.info.mode == "jellyfin" and version_tuple(spec.info.version) >= (12,)


def _base(spec: Contract, server: SampleServer) -> str:
    return server.url + ("/emby" if spec.info.mode == "emby" else "")


def test_flavour_reports_its_version(spec: Contract, server: SampleServer) -> None:
    info = httpx.get(_base(spec, server) + "/System/Info/Public").json()
    assert info["Version"] == spec.info.version
    assert info["ProductName"] == ("Emby Server" if spec.info.mode == "emby" else "Jellyfin Server")


# -- authorization ---------------------------------------------------------------------------------------
AUTH_FORMS = {  # name -> (headers, query); the key is always the right one
    "Authorization: MediaBrowser": ({"Authorization": COMPLETE}, {}),
    "ApiKey": ({}, {"ApiKey": API_KEY}),
    "X-Emby-Token": ({"X-Emby-Token": API_KEY}, {}),
    "X-MediaBrowser-Token": ({"X-MediaBrowser-Token": API_KEY}, {}),
    "X-Emby-Authorization": ({"X-Emby-Authorization": COMPLETE}, {}),
    "api_key": ({}, {"api_key": API_KEY}),
}
LEGACY = {"X-Emby-Token", "X-MediaBrowser-Token", "X-Emby-Authorization", "api_key"}


def test_jellyfin_12_accepts_only_the_authorization_header_and_apikey(spec: Contract, server: SampleServer) -> None:
    """Every flavour takes every form but Jellyfin 12, which answers a legacy credential with 401 (as if the key
    were revoked). Emby is not asked about `ApiKey` (its own form is `api_key`)."""
    statuses = {}
    with httpx.Client(base_url=_base(spec, server)) as http:
        for name, (headers, params) in AUTH_FORMS.items():
            if spec.info.mode == "emby" and name == "ApiKey":
                continue
            statuses[name] = http.get("/System/Info", headers=headers, params=params).status_code
        wrong = http.get("/System/Info", headers={"Authorization": COMPLETE.replace(API_KEY, "nope")}).status_code
        bare = http.get("/System/Info").status_code
    expected = {name: 401 if _jellyfin12(spec) and name in LEGACY else 200 for name in statuses}
    assert statuses == expected
    assert wrong == bare == 401


def test_product_clients_authenticate_as_each_flavour_accepts(spec: Contract, server: SampleServer) -> None:
    """The product's client talks to the flavour with credentials it accepts: Jellyfin's client sends only the
    Authorization header (no legacy header that 12 would ignore or refuse), Emby's sends X-Emby-Token."""
    log = SentLog()
    with _client(spec, server, 100, log) as client:
        assert client.users() and client.libraries()
    sent = list(log.headers.values())
    assert sent and all(set(h) == ({"X-Emby-Token"} if spec.info.mode == "emby" else {"Authorization"})
                        for h in sent)
    operations, failures = check_record(spec, server, log)
    assert not failures and sum(operations.values()) == 2


def test_strm_urls_carry_the_key_each_flavour_accepts(spec: Contract, server: SampleServer) -> None:
    """The product's stream URL (what a strm library's files hold) plays on its flavour; Jellyfin's carries
    `ApiKey`, and on Jellyfin 12 the legacy `api_key` spelling of the same URL is refused."""
    emby = spec.info.mode == "emby"
    episode = next(i.id for i in server.state.items.values() if i.type == "Episode")
    cls = EmbyClient if emby else JellyfinClient
    with cls(server.url, API_KEY) as client:
        template = client.stream_url_template(API_KEY)
        keyless = client.stream_url_template()
    url = template.format(item_id=quote(episode, safe=""))
    param = "api_key" if emby else "ApiKey"
    assert f"&{param}={API_KEY}" in url and ("api_key=" in url) == emby
    legacy = url.replace(f"ApiKey={API_KEY}", f"api_key={API_KEY}")
    with httpx.Client() as http:
        assert http.get(url).status_code == 200
        assert http.head(url).status_code == 200
        assert http.get(keyless.format(item_id=episode)).status_code == 401
        assert http.get(url.replace(API_KEY, "wrong")).status_code == 401
        assert http.get(url.replace(quote(episode, safe=""), "404404")).status_code in (401, 404)
        if not emby:
            assert http.get(legacy).status_code == (401 if _jellyfin12(spec) else 200)


def test_legacy_credentials_are_not_in_the_jellyfin_spec(spec: Contract) -> None:
    """The Jellyfin specs declare only the Authorization header: a request carrying the key as `api_key` (or with
    no Authorization header) is not a valid request there."""
    if spec.info.mode == "emby":
        pytest.skip("Emby's spec declares api_key (openapi.py strips its security)")
    with pytest.raises(ContractError):
        spec.validate_request("GET", "/System/Info", [("api_key", API_KEY)], None, {})
    with pytest.raises(ContractError):
        spec.validate_request("GET", "/System/Info", [], None, {"X-Emby-Token": API_KEY})
    spec.validate_request("GET", "/System/Info", [], None, {"Authorization": COMPLETE})


# -- library names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [" Picks", "Picks ", "\tPicks"])
def test_jellyfin_12_refuses_library_names_with_whitespace_at_an_end(spec: Contract, server: SampleServer,
                                                                    tmp_path, name: str) -> None:
    emby = spec.info.mode == "emby"
    with httpx.Client(base_url=_base(spec, server), headers=_headers(spec)) as http:
        if emby:
            response = http.post("/Library/VirtualFolders", json={"Name": name, "CollectionType": "tvshows",
                                                                   "Paths": [str(tmp_path)]})
        else:
            response = http.post("/Library/VirtualFolders", params={"name": name, "collectionType": "tvshows",
                                                                     "paths": str(tmp_path)})
        clean = http.post("/Library/VirtualFolders", **(
            {"json": {"Name": "Picks", "CollectionType": "tvshows", "Paths": [str(tmp_path)]}} if emby else
            {"params": {"name": "Picks", "collectionType": "tvshows", "paths": str(tmp_path)}}))
    assert clean.status_code == 204
    assert response.status_code == (400 if _jellyfin12(spec) else 204), response.text
    names = [f["Name"] for f in server.state.folders]
    assert (name in names) == (not _jellyfin12(spec)) and "Picks" in names
    if not emby:  # the 12 spec says so too (`pattern` on `name`); earlier specs allow any name
        rec = server.requests[0]
        if _jellyfin12(spec):
            with pytest.raises(ContractError):
                spec.validate_request("POST", rec.raw_path, rec.query, None, _headers(spec))
        else:
            spec.validate_request("POST", rec.raw_path, rec.query, None, _headers(spec))


# -- routes and shapes that differ by version -------------------------------------------------------------
def test_users_items_path_exists_only_where_the_server_routes_it(spec: Contract, server: SampleServer) -> None:
    user = next(iter(server.state.users))
    with httpx.Client(base_url=_base(spec, server), headers=_headers(spec)) as http:
        status = http.get(f"/Users/{user}/Items", params={"IncludeItemTypes": "Series", "Recursive": "true"})
    routed = spec.info.mode == "emby" or version_tuple(spec.info.version) < (10, 11)
    assert status.status_code == (200 if routed else 404)


def test_jellyfin_12_user_data_key_is_required_and_always_sent(spec: Contract, server: SampleServer) -> None:
    emby = spec.info.mode == "emby"
    user = next(u.id for u in server.state.users.values() if u.name == "alice")
    with httpx.Client(base_url=_base(spec, server), headers=_headers(spec)) as http:
        if emby:
            page = http.get(f"/Users/{user}/Items", params={"IncludeItemTypes": "Episode", "Recursive": "true",
                                                            "IsPlayed": "true"}).json()
        else:
            page = http.get("/Items", params={"userId": user, "includeItemTypes": "Episode", "recursive": "true",
                                              "isPlayed": "true", "enableUserData": "true"}).json()
    assert page["Items"] and all(i["UserData"]["Key"] for i in page["Items"])
    rec = server.requests[0]
    spec.validate_response("GET", rec.raw_path, rec.query, 200, rec.response, _headers(spec))
    keyless = json.loads(json.dumps(rec.response))
    del keyless["Items"][0]["UserData"]["Key"]
    if _jellyfin12(spec):  # UserItemDataDto.Key is required from 12
        with pytest.raises(ContractError):
            spec.validate_response("GET", rec.raw_path, rec.query, 200, keyless, _headers(spec))
    else:
        spec.validate_response("GET", rec.raw_path, rec.query, 200, keyless, _headers(spec))


def test_emby_leaves_out_series_fields_not_named_in_fields(spec: Contract, server: SampleServer) -> None:
    """A series read that names only SortName: Emby sends no year, dates, status or ratings (and neither server
    sends Overview, Genres, ...); Jellyfin sends the former always. With the product's Fields, Emby sends all."""
    emby = spec.info.mode == "emby"
    library = next(f["ItemId"] for f in server.state.folders if f["Name"] == "TV Shows")
    cls = EmbyClient if emby else JellyfinClient
    with cls(server.url, API_KEY) as client:
        asked = client.items("Series", library, client.series_fields())
        bare = client.items("Series", library, ["SortName"])
    for rec in server.requests:
        spec.validate_request(rec.method, rec.raw_path, rec.query, rec.body, _headers(spec))
        spec.validate_response(rec.method, rec.raw_path, rec.query, rec.status, rec.response, _headers(spec))
    harbour = {i["Name"]: i for i in bare}["Harbour Lights"]
    gated = set(EMBY_ASKED_SERIES_FIELDS.values())
    assert not {"Overview", "Genres", "Studios", "ProviderIds", "Tags", "TagItems", "Path"} & harbour.keys()
    assert (gated & harbour.keys()) == (set() if emby else gated), sorted(harbour)
    full = {i["Name"]: i for i in asked}["Harbour Lights"]
    assert gated <= full.keys() and {"Overview", "Genres", "Studios", "ProviderIds"} <= full.keys()
    assert full["ProductionYear"] == 2015 and full["EndDate"].startswith("2018-12-31")


def test_emby_49_filters_special_seasons(spec: Contract, server: SampleServer) -> None:
    """`IsSpecialSeason` is in Emby 4.9's spec and filters; 4.8's spec does not declare it and its server, like
    every other, ignores an unknown parameter."""
    if spec.info.mode != "emby":
        pytest.skip("an Emby 4.9 parameter")
    params = [("IncludeItemTypes", "Season"), ("Recursive", "true")]
    with httpx.Client(base_url=_base(spec, server), headers=_headers(spec)) as http:
        every = http.get("/Items", params=params).json()["Items"]
        specials = http.get("/Items", params=[*params, ("IsSpecialSeason", "true")]).json()["Items"]
        regular = http.get("/Items", params=[*params, ("IsSpecialSeason", "false")]).json()["Items"]
    version = version_tuple(spec.info.version)
    if version >= (4, 9):
        assert specials and all(s["IndexNumber"] == 0 for s in specials)
        assert regular and all(s["IndexNumber"] != 0 for s in regular)
        assert len(specials) + len(regular) == len(every)
        for rec in server.requests:
            spec.validate_request(rec.method, rec.raw_path, rec.query, rec.body, _headers(spec))
            spec.validate_response(rec.method, rec.raw_path, rec.query, rec.status, rec.response, _headers(spec))
    else:
        assert len(specials) == len(regular) == len(every)
        with pytest.raises(ContractError):
            spec.validate_request("GET", "/emby/Items", [*params, ("IsSpecialSeason", "true")], None)
