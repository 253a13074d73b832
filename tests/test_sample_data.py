"""The bundled sample library and the synthetic generator honour DATA_SCHEMA.md and load into the sample
server's state. Pure Python: no server, no database, so these fail fast when the data drifts."""

import json
from collections import Counter
from pathlib import Path

import pytest
from aperture_dev.sample_server import synthetic
from aperture_dev.sample_server.model import build_state

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
    for user in d["users"]:
        for h in user["history"]:
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
