"""The server's access rules bind every pick: library access, parental ratings, blocked and allowed tags, read from
either server's policy shape; dislikes and dropped shows push picks away; every rule's removals are counted.

The property test draws random policies, ratings, tags, copies and dislikes over a small library and checks no
pick (and no copy chosen for linking) ever breaks them, for Jellyfin- and Emby-shaped policies alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aperture_assets.defs.recommendations.assets import catalog_part
from aperture_assets.logic.explanations import template
from aperture_assets.logic.recommend import REMOVAL_RULES, Catalog, History, Params, Rules, recommend
from aperture_assets.logic.rules import access_verdicts, user_rules
from aperture_assets.logic.scoring import Watched
from aperture_resources.media_server.access import (
    NOTHING,
    SeriesCopy,
    parse_policy,
    parse_scale,
    rating_value,
    refusal,
)

NOW = datetime(2026, 11, 30, tzinfo=UTC)
SCALE = parse_scale([{"Name": n, "Value": v} for n, v in
                     (("TV-Y", 0), ("TV-G", 0), ("TV-Y7", 7), ("TV-PG", 10), ("TV-14", 14), ("TV-MA", 17))])
RATINGS = [None, "TV-Y", "TV-G", "TV-Y7", "TV-PG", "TV-14", "TV-MA", "XX-Unknown"]
TAGS = ["scary", "gore", "family", "space"]
LIBRARIES = ["kids", "tv", "docs"]


def copy(library="tv", rating=None, tags=(), path=None, series_id="s1") -> SeriesCopy:
    return SeriesCopy(series_id, library, path, rating, tuple(tags))


# -- reading policies ------------------------------------------------------------------------------------------
def test_a_jellyfin_policy_reads_folders_ratings_and_both_tag_lists() -> None:
    rules = parse_policy({"EnableAllFolders": False, "EnabledFolders": ["AB-CD", "ef"], "MaxParentalRating": 10,
                          "BlockUnratedItems": ["Movie", "Series"], "BlockedTags": [" Scary "],
                          "AllowedTags": ["Family"], "BlockedMediaFolders": []})
    assert rules.folders == {"abcd", "ef"} and not rules.all_folders
    assert rules.max_rating == 10 and rules.block_unrated
    assert rules.blocked_tags == {"scary"} and rules.allowed_tags == {"family"}


def test_an_emby_policy_reads_include_tags_and_excluded_sub_folders() -> None:
    rules = parse_policy({"EnableAllFolders": True, "IsTagBlockingModeInclusive": True, "IncludeTags": ["Kids"],
                          "ExcludedSubFolders": ["g1_/media/tv/adult", "g2"], "BlockedMediaFolders": ["g3"]})
    assert rules.all_folders and rules.allowed_tags == {"kids"}
    assert refusal(rules, SCALE, copy("g1", tags=["kids"], path="/media/tv/adult/Show")) == "access"
    assert refusal(rules, SCALE, copy("g1", tags=["kids"], path="/media/tv/other/Show")) is None
    assert refusal(rules, SCALE, copy("g2", tags=["kids"])) == "access"  # an entry not understood: whole library
    assert refusal(rules, SCALE, copy("g3", tags=["kids"])) == "access"
    # without the inclusive mode, IncludeTags mean nothing
    assert parse_policy({"EnableAllFolders": True, "IncludeTags": ["Kids"]}).allowed_tags == frozenset()


def test_a_missing_or_malformed_policy_opens_nothing() -> None:
    for policy in (None, [], "x", {"EnableAllFolders": "true"}, {"MaxParentalRating": "10", "EnabledFolders": "tv"}):
        rules = parse_policy(policy)
        assert refusal(rules, SCALE, copy("tv")) == "access"
    assert refusal(NOTHING, SCALE, copy("tv")) == "access"


def test_ratings_are_read_on_the_servers_scale_and_off_scale_ratings_fail_closed() -> None:
    assert rating_value(SCALE, "tv-pg") == 10 and rating_value(SCALE, "US-TV-14") == 14
    assert rating_value(SCALE, "XX-Unknown") is None and rating_value(SCALE, " ") is None
    assert parse_scale([{"Name": "A", "Value": "3"}, {"Name": "", "Value": 1}, "x", {"Name": "B", "Value": True}]) == {}
    limited = parse_policy({"EnableAllFolders": True, "MaxParentalRating": 10})
    assert refusal(limited, SCALE, copy(rating="TV-PG")) is None
    assert refusal(limited, SCALE, copy(rating="TV-14")) == "rating"
    assert refusal(limited, SCALE, copy(rating="XX-Unknown")) == "rating"  # cannot be placed under the limit
    assert refusal(limited, {}, copy(rating="TV-G")) == "rating"  # an empty scale opens nothing rated
    assert refusal(limited, SCALE, copy(rating=None)) is None  # unrated, and unrated is not blocked
    unrated = parse_policy({"EnableAllFolders": True, "BlockUnratedItems": ["Series"]})
    assert refusal(unrated, SCALE, copy(rating=None)) == "rating"
    assert refusal(unrated, SCALE, copy(rating="XX-Unknown")) == "rating"  # the server counts it unrated too
    assert refusal(unrated, SCALE, copy(rating="TV-MA")) is None


def test_a_show_is_offered_through_a_copy_the_user_may_open() -> None:
    rules = parse_policy({"EnableAllFolders": False, "EnabledFolders": ["tv"]})
    copies = {"show:a": [copy("kids", series_id="a-kids"), copy("tv", series_id="a-tv")],
              "show:b": [copy("kids", series_id="b-kids")]}
    refused, allowed = access_verdicts(rules, SCALE, copies, ["show:a", "show:b", "show:unknown"])
    assert allowed == {"show:a": "a-tv"}
    assert refused == {"show:b": "access", "show:unknown": "access"}  # a show with no known copy is refused


# -- the recommender under rules ---------------------------------------------------------------------------
def small_catalog(n: int, seed: int = 0, genres=None, tags=None) -> Catalog:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Catalog(shows=[f"show:{i}" for i in range(n)], series_ids=[f"s{i}" for i in range(n)],
                   names=[f"Show {i}" for i in range(n)], ratings=[7.0] * n,
                   genres=genres or [["Drama"] for _ in range(n)], vectors=vectors,
                   popularity=np.arange(n, dtype=float), tags=tags or [[] for _ in range(n)])


def watched(show: str, episodes: int, available: int = 10, days_ago: int = 5, favorite: bool = False,
            state: str = "completed") -> History:
    return History(show, state, Watched(show, episodes, available, 1, favorite, NOW - timedelta(days=days_ago)))


def test_a_disliked_show_is_never_picked_and_pulls_its_close_neighbours_down() -> None:
    catalog = small_catalog(30)
    catalog.vectors[1] = catalog.vectors[0] * 0.9 + catalog.vectors[2] * 0.1  # show 1 is close to show 0
    catalog.vectors[1] /= np.linalg.norm(catalog.vectors[1])
    history = [watched("show:5", 10), watched("show:6", 10)]
    plain = recommend(catalog, history, {}, NOW, Params(count=29))
    disliking = recommend(catalog, history, {}, NOW, Params(count=29), rules=Rules(disliked=frozenset({"show:0"})))
    assert "show:0" in [p.show for p in plain.picks] and "show:0" not in [p.show for p in disliking.picks]
    assert disliking.removed["dislikes"] == 1
    score = {p.show: p.score for p in plain.picks}
    pulled = {p.show: p for p in disliking.picks}["show:1"]
    assert pulled.score < score["show:1"] and pulled.components["negative"] > 0
    assert any(e.get("signal") == "disliked" and e["name"] == "Show 0" for e in pulled.evidence)


def test_a_dropped_show_is_not_taste_and_counts_as_a_weak_negative() -> None:
    catalog = small_catalog(20)
    dropped = watched("show:3", 1, available=40, days_ago=120, state="in_progress")
    recent = watched("show:3", 1, available=40, days_ago=10, state="in_progress")
    favourite = watched("show:3", 1, available=40, days_ago=120, favorite=True, state="in_progress")
    base = [watched("show:7", 10)]
    params = Params(count=5)
    evidence = {name: {e["name"]: e.get("signal") for p in recommend(catalog, [*base, h], {}, NOW, params).picks
                       for e in p.evidence}
                for name, h in (("dropped", dropped), ("recent", recent), ("favourite", favourite))}
    assert evidence["dropped"].get("Show 3") in (None, "dropped")  # never taste evidence once dropped
    assert evidence["recent"].get("Show 3") in (None, "watched")
    assert evidence["favourite"].get("Show 3") in (None, "favourite")
    only_dropped = recommend(catalog, [dropped], {}, NOW, params)
    assert only_dropped.cold_start  # no taste left: the popular list, pulled away from the dropped show


def test_exclusions_by_genre_and_tag_and_the_removal_counts() -> None:
    genres = [["Horror"] if i % 5 == 0 else ["Drama"] for i in range(20)]
    tags = [["gore"] if i % 7 == 0 else [] for i in range(20)]
    catalog = small_catalog(20, genres=genres, tags=tags)
    rules = user_rules(({"show:1": "access", "show:2": "rating", "show:3": "tags"}, {}), {"show:4"},
                       ["HORROR"], ["Gore"])
    result = recommend(catalog, [watched("show:9", 10)], {}, NOW, Params(count=19), rules=rules)
    picked = {p.show for p in result.picks}
    assert not picked & {"show:0", "show:1", "show:2", "show:3", "show:4", "show:5", "show:7", "show:10",
                         "show:14", "show:15"}
    assert result.removed == {"access": 1, "rating": 1, "tags": 1, "dislikes": 1, "exclusions": 6}
    assert list(result.removed) == list(REMOVAL_RULES)


def test_the_reason_line_names_the_shows_behind_a_pick_and_viewers_like_you() -> None:
    catalog = small_catalog(12)
    pick = recommend(catalog, [watched("show:1", 10, favorite=True), watched("show:2", 10)], {}, NOW).picks[0]
    line = template(pick)
    assert line.startswith("Because you watched Show ") and line.endswith(".")
    assert pick.components["collaborative"] < pick.score / 3 and "viewers like you" not in line
    social = pick.__class__(**{**pick.__dict__, "components": {**pick.components, "collaborative": 0.4 * pick.score}})
    assert template(social).endswith("; popular with viewers like you.")  # co-watching gives 40% of the score
    cold = recommend(catalog, [], {}, NOW).picks[0]
    assert template(cold) == "Popular and well rated on this server."


# -- the property: no pick ever breaks a rule ---------------------------------------------------------------
policies = st.fixed_dictionaries({}, optional={
    "EnableAllFolders": st.booleans(),
    "EnabledFolders": st.lists(st.sampled_from(LIBRARIES), max_size=3),
    "BlockedMediaFolders": st.lists(st.sampled_from(LIBRARIES), max_size=1),
    "MaxParentalRating": st.sampled_from([0, 7, 10, 14, 17]),
    "BlockUnratedItems": st.lists(st.sampled_from(["Series", "Movie"]), max_size=2),
    "BlockedTags": st.lists(st.sampled_from([*TAGS, "SCARY"]), max_size=2),
    "AllowedTags": st.lists(st.sampled_from(TAGS), max_size=2),  # Jellyfin
    "IsTagBlockingModeInclusive": st.booleans(),  # Emby
    "IncludeTags": st.lists(st.sampled_from(TAGS), max_size=2),
})
series_copies = st.lists(st.tuples(st.sampled_from(LIBRARIES), st.sampled_from(RATINGS),
                                   st.lists(st.sampled_from(TAGS), max_size=2)), min_size=1, max_size=2)


def visible_to(policy: dict, library: str, rating: str | None, tags: list[str]) -> bool:
    """The rules written out plainly, as the servers document them (the oracle the property compares with)."""
    if not policy.get("EnableAllFolders") and library not in policy.get("EnabledFolders", []):
        return False
    if library in policy.get("BlockedMediaFolders", []):
        return False
    value = SCALE.get((rating or "").casefold())
    if value is None and "Series" in policy.get("BlockUnratedItems", []):
        return False
    if "MaxParentalRating" in policy and rating and (value is None or value > policy["MaxParentalRating"]):
        return False
    folded = {t.casefold() for t in tags}
    if folded & {t.casefold() for t in policy.get("BlockedTags", [])}:
        return False
    allowed = set(policy.get("AllowedTags", []))
    if policy.get("IsTagBlockingModeInclusive"):
        allowed |= set(policy.get("IncludeTags", []))
    return not allowed or bool(folded & allowed)


@settings(max_examples=300, deadline=None)
@given(policy=policies, library=st.lists(series_copies, min_size=6, max_size=12),
       disliked=st.sets(st.integers(0, 11), max_size=3), seen=st.sets(st.integers(0, 11), max_size=4),
       seed=st.integers(0, 1000))
def test_no_pick_ever_breaks_the_users_rules(policy, library, disliked, seen, seed) -> None:
    n = len(library)
    catalog = small_catalog(n, seed)
    copies = {catalog.shows[i]: [copy(lib, rating, tags, series_id=f"s{i}-{j}")
                                 for j, (lib, rating, tags) in enumerate(options)]
              for i, options in enumerate(library)}
    rules = user_rules(access_verdicts(parse_policy(policy), SCALE, copies, catalog.shows),
                       {catalog.shows[i] for i in disliked if i < n}, [], [])
    history = [watched(catalog.shows[i], 10) for i in seen if i < n]
    result = recommend(catalog, history, {}, NOW, Params(count=n), rules=rules)
    facts = {c.series_id: (c.library, c.official_rating, list(c.tags)) for cs in copies.values() for c in cs}
    for pick in result.picks:
        assert pick.show not in rules.disliked
        assert pick.series_id in facts, "a pick always names a checked copy"
        assert visible_to(policy, *facts[pick.series_id]), (pick, facts[pick.series_id])
    offered = [i for i, show in enumerate(catalog.shows) if show not in {h.show for h in history}]
    assert len(result.picks) + sum(result.removed.values()) == len(offered)


@settings(max_examples=200, deadline=None)
@given(policy=policies, library=st.lists(series_copies, min_size=3, max_size=8),
       own=st.sampled_from(["EnabledFolders", "BlockedMediaFolders", "ExcludedSubFolders"]))
def test_policies_differing_only_outside_the_catalogs_libraries_share_one_verdict(policy, library, own) -> None:
    """Once picks libraries exist every user's policy names their own; the verdicts are computed once per policy
    as far as the catalog's libraries go, and must be the verdicts of the whole policy."""
    copies = {f"show:{i}": [copy(lib, rating, tags, series_id=f"s{i}-{j}") for j, (lib, rating, tags) in enumerate(o)]
              for i, o in enumerate(library)}
    in_catalog = frozenset(c.library for cs in copies.values() for c in cs)
    extra = "picks-of-u1" if own != "ExcludedSubFolders" else "picks-of-u1_/picks/u1"
    with_own = {**policy, own: [*policy.get(own, []), extra]}
    whole, part = parse_policy(with_own), catalog_part(parse_policy(with_own), in_catalog)
    assert part == catalog_part(parse_policy(policy), in_catalog)
    assert part != whole  # the picks library is gone from the key
    assert access_verdicts(part, SCALE, copies, list(copies)) == access_verdicts(whole, SCALE, copies, list(copies))


@settings(max_examples=100, deadline=None)
@given(policy=policies, library=st.lists(series_copies, min_size=3, max_size=8))
def test_all_folders_and_the_list_the_library_stage_makes_of_them_share_one_key(policy, library) -> None:
    """The library stage turns "all folders" into a list of the libraries plus the user's own picks library; the
    key of the verdicts (and of the recommendations' inputs) must not change with it."""
    copies = {f"show:{i}": [copy(lib, rating, tags, series_id=f"s{i}-{j}") for j, (lib, rating, tags) in enumerate(o)]
              for i, o in enumerate(library)}
    in_catalog = frozenset(c.library for cs in copies.values() for c in cs)
    everything = {**policy, "EnableAllFolders": True}
    listed = {**policy, "EnableAllFolders": False, "EnabledFolders": [*sorted(in_catalog), "picks-of-u1"]}
    key = catalog_part(parse_policy(everything), in_catalog)
    assert key == catalog_part(parse_policy(listed), in_catalog)
    assert access_verdicts(key, SCALE, copies, list(copies)) == \
        access_verdicts(parse_policy(everything), SCALE, copies, list(copies))
