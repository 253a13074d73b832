"""The planned tree: layout golden files written to real disk in both modes, skips, specials and URLs.

Regenerate the golden files with APERTURE_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path, PurePosixPath

import pytest

from aperture_resources.library.model import EpisodeSource, LibraryOptions, PickedSeries, PrivateBytes, Symlink
from aperture_resources.library.tree import (
    PLACEHOLDER_EPISODE,
    PLACEHOLDER_URL,
    SKIP_REASONS,
    placeholder_episode_number,
    plan_user_tree,
    stream_url,
)
from aperture_resources.library.writer import write_user_tree
from tests.conftest import strm_options

GOLDEN = Path(__file__).parent / "golden" / "library"
TICKS_PER_MINUTE = 600_000_000


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("APERTURE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs (APERTURE_UPDATE_GOLDEN=1 to update)"


def ep(
    item_id: str, season: int | None, episode: int | None, end: int | None = None, path: str | None = ""
) -> EpisodeSource:
    if path == "":
        path = f"/media/tv/{item_id}.mkv"
    return EpisodeSource(
        item_id, season, episode, end, f"Episode {item_id}", path, date(2020, 1, 1), 30 * TICKS_PER_MINUTE
    )


def series(
    rank: int, series_id: str, title: str, year: int | None, episodes: tuple[EpisodeSource, ...]
) -> PickedSeries:
    return PickedSeries(
        rank=rank, series_id=series_id, title=title, year=year, original_title=None, overview=f"About {title}",
        genres=("Drama",), studios=(), status="Continuing", official_rating=None, community_rating=None,
        premiere_date=None, end_year=None, tvdb_id=f"tvdb-{series_id}", tmdb_id=None, imdb_id=None,
        episodes=episodes,
    )  # fmt: skip


PICKS = (
    series(1, "bb", "Breaking Bad", 2008, (
        ep("bb101", 1, 1),
        ep("bb102", 1, 2, path="/media/tv/Breaking Bad/S01E02.MP4"),
        ep("bb103", 1, 3, 4),  # one file holding two episodes
        ep("bb000", 0, 1),  # a real special
        ep("bbxxx", 1, None),  # unnumbered: skipped
        ep("bbnop", 2, 1, path=None),  # no file: skipped in symlink mode only
        ep("bb101b", 1, 1, path="/media/tv/copy/bb101b.mkv"),  # second copy of S01E01: skipped
    )),
    series(2, "dark", "Dark: <Director's Cut>", None, (ep("dk101", 1, 1, path="D:\\TV\\Dark\\S01E01.mkv"),)),
    series(3, "office-uk", "The Office", 2005, (ep("ouk101", 1, 1),)),
    series(4, "office-us", "The Office", 2005, ()),
)  # fmt: skip
# Link targets are the server's own paths, verbatim (the server follows them), under its TV library folders
# (media_roots, as the server lists them); a Windows path is no usable target.
SYMLINK = LibraryOptions(mode="symlink", media_roots=("/media/tv",))
STRM = strm_options("emby", "https://emby.example:8920")


def listing(top: Path) -> str:
    """One line per entry on disk: links with their target, .strm with their URL, other files with a hash."""
    lines = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath, name)
            rel = path.relative_to(top).as_posix()
            if path.is_symlink():
                lines.append(f"{rel} -> {os.readlink(path)}")
            elif path.is_dir():
                lines.append(f"{rel}/")
            elif path.suffix == ".strm":
                lines.append(f"{rel} = {path.read_text().strip()}")
            else:
                lines.append(f"{rel} sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}")
    return "\n".join(sorted(lines)) + "\n"


@pytest.mark.parametrize(("options", "golden"), [(SYMLINK, "tree-symlink.txt"), (STRM, "tree-strm.txt")])
def test_tree_golden_on_disk(tmp_path: Path, options: LibraryOptions, golden: str) -> None:
    user_dir = tmp_path / "root" / "users" / "alice" / "ai-series"
    (tmp_path / "root").mkdir()
    plan = plan_user_tree(PICKS, options)
    write_user_tree(user_dir, plan.entries, tmp_path / "root")
    check_golden(golden, listing(user_dir))


def test_skip_counts() -> None:
    nothing = dict.fromkeys(SKIP_REASONS, 0)
    assert plan_user_tree(PICKS, SYMLINK).skipped == {**nothing, "unnumbered": 1, "no_path": 1,
                                                     "outside_library": 1, "duplicate": 1}
    assert plan_user_tree(PICKS, STRM).skipped == {**nothing, "unnumbered": 1, "duplicate": 1}


def test_symlink_targets_and_extensions() -> None:
    entries = plan_user_tree(PICKS, SYMLINK).entries
    season1 = PurePosixPath("Breaking Bad (2008)/Season 1")
    assert entries[season1 / "Breaking Bad - S01E01.mkv"] == Symlink("/media/tv/bb101.mkv")
    assert entries[season1 / "Breaking Bad - S01E02.mp4"] == Symlink("/media/tv/Breaking Bad/S01E02.MP4")
    assert entries[season1 / "Breaking Bad - S01E03-E04.mkv"] == Symlink("/media/tv/bb103.mkv")
    assert PurePosixPath("Dark Director's Cut/Season 1/Dark Director's Cut - S01E01.mkv") not in entries


def test_specials_live_beside_the_placeholder_without_clashing() -> None:
    entries = plan_user_tree(PICKS, STRM).entries
    specials = sorted(p.name for p in entries if p.parent == PurePosixPath("Breaking Bad (2008)/Season 00"))
    assert specials == [
        "Breaking Bad - S00E01.nfo",
        "Breaking Bad - S00E01.strm",
        "breaking-bad-placeholder.nfo",
        "breaking-bad-placeholder.strm",
    ]


def test_placeholder_episode_number_avoids_real_specials() -> None:
    assert placeholder_episode_number([]) == PLACEHOLDER_EPISODE
    assert placeholder_episode_number([ep("a", 0, 12), ep("b", 1, 9999)]) == PLACEHOLDER_EPISODE
    assert placeholder_episode_number([ep("a", 0, 9999)]) == 10000
    assert placeholder_episode_number([ep("a", 0, 9998, 10004)]) == 10005


def test_placeholder_strm_is_one_fixed_url_whatever_the_server_address() -> None:
    """A server that moves (a new port, a reverse proxy) must not rewrite every placeholder."""
    for options in (SYMLINK, STRM, strm_options("emby", "http://elsewhere:8920/")):
        entries = plan_user_tree(PICKS, options).entries
        content = entries[PurePosixPath("Breaking Bad (2008)/Season 00/breaking-bad-placeholder.strm")]
        assert content == PLACEHOLDER_URL.encode() + b"\n" and PLACEHOLDER_URL.startswith("http://")


def test_stream_urls() -> None:
    jf = strm_options("jellyfin", "http://jf:8096/")
    assert stream_url("abc", jf) == "http://jf:8096/Videos/abc/stream?static=true"
    keyed = strm_options("jellyfin", "http://jf:8096", "k&1")
    assert stream_url("abc", keyed) == "http://jf:8096/Videos/abc/stream?static=true&ApiKey=k%261"
    emby = strm_options("emby", "http://emby:8096", "k")
    assert stream_url("42", emby) == "http://emby:8096/emby/Videos/42/stream?static=true&api_key=k"
    assert stream_url("../x?y", jf) == "http://jf:8096/Videos/..%2Fx%3Fy/stream?static=true"


def episode_links(paths: list[str], options: LibraryOptions) -> tuple[dict[str, str], dict[str, int]]:
    """{episode file name: link target} and the skip counts of a series with one episode per path."""
    episodes = tuple(ep(f"e{i}", 1, i + 1, path=path) for i, path in enumerate(paths))
    plan = plan_user_tree([series(1, "s", "S", None, episodes)], options)
    links = {p.name: e.target for p, e in plan.entries.items() if isinstance(e, Symlink)}
    return links, {reason: n for reason, n in plan.skipped.items() if n}


@pytest.mark.parametrize(("path", "reason"), [
    ("/etc/ld.so.conf", "outside_library"),  # host files, as hostile or broken servers have sent them
    ("/root/.bashrc.bak", "outside_library"),
    ("../../etc/ssl/openssl.cnf", "outside_library"),
    ("/media/tv/../../etc/shadow.mkv", "outside_library"),  # starts with a root, but ".." climbs out of it
    ("/media/tv/show/../../../root/x.mkv", "outside_library"),
    ("/media/tv/./show/e1.mkv", "outside_library"),  # not normalised
    ("/media/tv//show/e1.mkv", "outside_library"),
    ("/media/tvshadow/e1.mkv", "outside_library"),  # shares the root's prefix, but is another folder
    ("/media/tv", "outside_library"),
    ("relative/x.mkv", "outside_library"),
    ("D:\\TV\\Dark\\S01E01.mkv", "outside_library"),
    ("/media/tv/show/e1.mkv\0.nfo", "outside_library"),
    ("/media/tv/show/e1.nfo", "not_video"),
    ("/media/tv/show/e1.strm", "not_video"),  # a .strm may point anywhere: not a video
    ("/media/tv/show/ld.so.conf", "not_video"),
    ("/media/tv/show/noext", "not_video"),
    ("/media/tv/show/e1.mkv.sh", "not_video"),
])  # fmt: skip
def test_symlink_mode_links_only_videos_inside_the_media_roots(path: str, reason: str) -> None:
    assert episode_links([path], SYMLINK) == ({}, {reason: 1})


def test_symlink_mode_accepts_videos_under_any_media_root() -> None:
    options = LibraryOptions(mode="symlink", media_roots=("/media/tv", "/srv/anime/"))
    links, skipped = episode_links(["/media/tv/A/e1.MKV", "/srv/anime/B/e2.m2ts", "/srv/anime/B/e3.iso"], options)
    assert links == {"S - S01E01.mkv": "/media/tv/A/e1.MKV", "S - S01E02.m2ts": "/srv/anime/B/e2.m2ts",
                     "S - S01E03.iso": "/srv/anime/B/e3.iso"}
    assert skipped == {}


@pytest.mark.parametrize("roots", [(), ("media/tv",), ("",)], ids=["none", "relative", "empty"])
def test_symlink_mode_without_usable_media_roots_links_nothing(roots: tuple[str, ...]) -> None:
    options = LibraryOptions(mode="symlink", media_roots=roots)
    assert episode_links(["/media/tv/A/e1.mkv", "/etc/passwd"], options) == ({}, {"outside_library": 2})


def test_stream_url_files_are_private_and_nothing_else_is() -> None:
    """Episode .strm files carry the key (strm mode needs it), so the writer must make them owner-only."""
    for options in (SYMLINK, STRM):
        entries = plan_user_tree(PICKS, options).entries
        private = {p.name for p, e in entries.items() if isinstance(e, PrivateBytes)}
        expected = {p.name for p in entries if p.suffix == ".strm" and "placeholder" not in p.name}
        assert private == (expected if options is STRM else set())


def test_duplicate_series_and_a_strm_mode_without_stream_url_are_rejected() -> None:
    with pytest.raises(ValueError, match="more than once"):
        plan_user_tree([PICKS[0], PICKS[0]], STRM)
    with pytest.raises(ValueError, match="stream URL"):
        LibraryOptions(mode="strm")


def test_plan_is_deterministic_and_order_independent() -> None:
    assert plan_user_tree(PICKS, STRM) == plan_user_tree(tuple(reversed(PICKS)), STRM)
