"""The pure rules of picks-library privacy and naming: explicit lists before any library exists, restored
access for users who could see everything, names unique whatever their case, suspicious listings refused."""

from __future__ import annotations

import pytest

from aperture_resources.library.server_sync import check_listing, name_key, private_policy, unique_names
from aperture_resources.media_server import EmbyClient, JellyfinClient, MediaServerError

JELLYFIN = JellyfinClient("http://j", "k")
FOLDERS = [{"ItemId": "tv", "Name": "TV"}, {"ItemId": "kids", "Name": "Kids TV"},
           {"ItemId": "mine", "Name": "alice's AI Picks - TV"}, {"ItemId": "theirs", "Name": "bob's AI Picks - TV"}]
PICKS, OWN = {"mine", "theirs"}, {"mine"}


def test_a_user_who_sees_everything_gets_an_explicit_list_even_before_any_picks_library_exists() -> None:
    everything = {"EnableAllFolders": True, "EnabledFolders": [], "IsAdministrator": True}
    assert private_policy(everything, FOLDERS[:2], JELLYFIN.permission_id, set(), set()) == {
        "EnableAllFolders": False, "EnabledFolders": ["tv", "kids"], "IsAdministrator": True}
    assert private_policy(everything, FOLDERS, JELLYFIN.permission_id, PICKS, OWN) == {
        "EnableAllFolders": False, "EnabledFolders": ["tv", "kids", "mine"], "IsAdministrator": True}


def test_explicit_lists_lose_other_users_picks_and_gain_their_own() -> None:
    listed = {"EnableAllFolders": False, "EnabledFolders": ["tv", "theirs"]}
    assert private_policy(listed, FOLDERS, JELLYFIN.permission_id, PICKS, OWN)["EnabledFolders"] == ["tv", "mine"]
    done = {"EnableAllFolders": False, "EnabledFolders": ["tv", "mine"]}
    assert private_policy(done, FOLDERS, JELLYFIN.permission_id, PICKS, OWN) is None


def test_users_who_saw_everything_keep_seeing_libraries_added_later() -> None:
    converted = {"EnableAllFolders": False, "EnabledFolders": ["tv", "mine"]}
    added = [*FOLDERS, {"ItemId": "anime", "Name": "Anime"}]
    assert private_policy(converted, added, JELLYFIN.permission_id, PICKS, OWN) is None  # a restricted user
    assert private_policy(converted, added, JELLYFIN.permission_id, PICKS, OWN, see_all=True)["EnabledFolders"] == \
        ["tv", "mine", "kids", "anime"]


def test_emby_policies_use_the_library_guid() -> None:
    emby = [{"ItemId": "1", "Guid": "aa-bb"}, {"ItemId": "2", "Guid": "ccdd"}]
    policy = private_policy({"EnableAllFolders": True}, emby, EmbyClient("http://e", "k").permission_id, {"ccdd"},
                            set())
    assert policy["EnabledFolders"] == ["aa-bb"]


@pytest.mark.parametrize(("first", "second"), [("alice", "ALICE"), ("Zoë", "Zoe\u0308"), ("ﬁlm", "FILM")])
def test_names_that_differ_only_in_case_or_form_get_distinct_libraries(first: str, second: str) -> None:
    assert name_key(first) == name_key(second)
    wanted = {"u1": (f"{first}'s picks", "/p/u1"), "u2": (f"{second}'s picks", "/p/u2")}
    names = unique_names(wanted, [], suffix=lambda key: key)
    assert len({name_key(name) for name, _ in names.values()}) == 2
    existing = [{"ItemId": "x", "Name": f"{first}'s picks", "Locations": ["/p/u1"]}]
    names = unique_names(wanted, existing, suffix=lambda key: key)
    assert names == {"u1": (f"{first}'s picks", "/p/u1"), "u2": (f"{second}'s picks (u2)", "/p/u2")}


def test_a_name_taken_by_someone_elses_library_is_not_an_error() -> None:
    taken = [{"ItemId": "x", "Name": "Alice's Picks", "Locations": ["/media/other"]}]
    assert unique_names({"u1": ("alice's picks", "/p/u1")}, taken, suffix=lambda key: "1a2b") == \
        {"u1": ("alice's picks (1a2b)", "/p/u1")}


def test_a_listing_without_the_libraries_aperture_made_is_refused() -> None:
    with pytest.raises(MediaServerError, match="listed no libraries"):
        check_listing(JELLYFIN, [], {"mine"})
    with pytest.raises(MediaServerError, match="none of the 2 picks libraries"):
        check_listing(JELLYFIN, FOLDERS[:2], {"mine", "theirs"})
    check_listing(JELLYFIN, FOLDERS[:3], {"mine", "theirs"})  # one deleted by the admin is believable
    check_listing(JELLYFIN, FOLDERS[:2], set())  # nothing made yet


def test_user_names_in_library_names_are_cleaned_like_titles() -> None:
    from aperture_resources.library.resource import LibraryResource
    from aperture_resources.media_server import JellyfinServer

    library = LibraryResource(media_server=JellyfinServer(url="http://j", api_key="k"), root="/tmp/x")
    assert library.library_name(" ../evil/\x00name\n ") == "evil name's AI Picks - TV"
    assert library.library_name("   ") == "User's AI Picks - TV"
    assert len(library.library_name("x" * 5000)) < 200
