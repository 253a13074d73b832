"""The planned tree: layout golden files written to real disk in both modes, skips, specials and URLs.

Regenerate the golden files with APERTURE_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path, PurePosixPath

import pytest

from aperture_resources.library.model import EpisodeSource, LibraryOptions, PickedSeries, Symlink
from aperture_resources.library.tree import (
    PLACEHOLDER_EPISODE,
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
# Link targets are the server's own paths, verbatim (the server follows them); a Windows path is no usable target.
SYMLINK = LibraryOptions(mode="symlink", server_url="http://jellyfin:8096/")
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
    assert plan_user_tree(PICKS, SYMLINK).skipped == {"unnumbered": 1, "no_path": 2, "duplicate": 1}
    assert plan_user_tree(PICKS, STRM).skipped == {"unnumbered": 1, "no_path": 0, "duplicate": 1}


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


def test_placeholder_strm_is_the_server_url_in_both_modes() -> None:
    for options in (SYMLINK, STRM):
        entries = plan_user_tree(PICKS, options).entries
        content = entries[PurePosixPath("Breaking Bad (2008)/Season 00/breaking-bad-placeholder.strm")]
        assert content == options.server_url.rstrip("/").encode() + b"/\n"


def test_stream_urls() -> None:
    jf = strm_options("jellyfin", "http://jf:8096/")
    assert stream_url("abc", jf) == "http://jf:8096/Videos/abc/stream?static=true"
    keyed = strm_options("jellyfin", "http://jf:8096", "k&1")
    assert stream_url("abc", keyed) == "http://jf:8096/Videos/abc/stream?static=true&ApiKey=k%261"
    emby = strm_options("emby", "http://emby:8096", "k")
    assert stream_url("42", emby) == "http://emby:8096/emby/Videos/42/stream?static=true&api_key=k"
    assert stream_url("../x?y", jf) == "http://jf:8096/Videos/..%2Fx%3Fy/stream?static=true"


def test_symlink_mode_skips_unusable_paths() -> None:
    bad = (ep("r", 1, 1, path="relative/x.mkv"), ep("n", 1, 2, path="/x/noext"), ep("f", 1, 3, path="/x/a.nfo"))
    plan = plan_user_tree([series(1, "s", "S", None, bad)], SYMLINK)
    assert plan.skipped["no_path"] == 3
    assert not [p for p in plan.entries if p.parent.name == "Season 1"]


def test_duplicate_series_rejected_and_server_url_checked() -> None:
    with pytest.raises(ValueError, match="more than once"):
        plan_user_tree([PICKS[0], PICKS[0]], STRM)
    with pytest.raises(ValueError, match="http"):
        LibraryOptions(mode="symlink", server_url="/var/lib/jellyfin")


def test_plan_is_deterministic_and_order_independent() -> None:
    assert plan_user_tree(PICKS, STRM) == plan_user_tree(tuple(reversed(PICKS)), STRM)
