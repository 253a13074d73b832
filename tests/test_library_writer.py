"""The writer on real disk: idempotence, change propagation, crash safety, confinement to the library root."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path, PurePosixPath

import pytest

from aperture_resources.library import writer
from aperture_resources.library.model import EpisodeSource, LibraryOptions, PickedSeries, Symlink
from aperture_resources.library.tree import plan_user_tree
from aperture_resources.library.writer import remove_user_tree, write_user_tree
from tests.conftest import strm_options

STRM = strm_options("jellyfin", "http://jellyfin:8096")
SYMLINK = LibraryOptions(mode="symlink", media_roots=("/media",))


def series(rank: int, series_id: str, title: str, n_episodes: int = 2) -> PickedSeries:
    episodes = tuple(
        EpisodeSource(f"{series_id}-{i}", 1, i, None, f"Ep {i}", f"/media/{series_id}/{i}.mkv", date(2020, 1, i), None)
        for i in range(1, n_episodes + 1)
    )
    return PickedSeries(
        rank=rank, series_id=series_id, title=title, year=2010, original_title=None, overview=None, genres=(),
        studios=(), status=None, official_rating=None, community_rating=None, premiere_date=None, end_year=None,
        tvdb_id=None, tmdb_id=None, imdb_id=None, episodes=episodes,
    )  # fmt: skip


def with_episodes(pick: PickedSeries, n: int) -> PickedSeries:
    return series(pick.rank, pick.series_id, pick.title, n)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "library").mkdir()
    return tmp_path / "library"


@pytest.fixture
def user_dir(root: Path) -> Path:
    return root / "users" / "alice" / "ai-series"


def write(user_dir: Path, root: Path, picks: list[PickedSeries], options: LibraryOptions = STRM) -> writer.WriteStats:
    return write_user_tree(user_dir, plan_user_tree(picks, options).entries, root)


def snapshot(top: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every entry, the top folder included, without following links."""
    result = {".": (top.lstat().st_ino, top.lstat().st_mtime_ns)}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            st = Path(dirpath, name).lstat()
            result[Path(dirpath, name).relative_to(top).as_posix()] = (st.st_ino, st.st_mtime_ns)
    return result


def files(top: Path) -> set[str]:
    return {k for k in snapshot(top) if k != "."}


def siblings(user_dir: Path) -> list[str]:
    return sorted(p.name for p in user_dir.parent.iterdir())


PICKS = [series(1, "a", "Alpha"), series(2, "b", "Beta"), series(3, "c", "Gamma")]


def test_first_write_then_idempotent(root: Path, user_dir: Path) -> None:
    first = write(user_dir, root, PICKS)
    assert first.written == len(files(user_dir)) - 3 * 3  # every file; folders are not entries
    assert first.unchanged == first.removed == 0
    before = snapshot(user_dir)
    second = write(user_dir, root, PICKS)
    assert (second.written, second.removed, second.unchanged) == (0, 0, first.written)
    assert second.changed_folders == ()
    assert snapshot(user_dir) == before
    assert siblings(user_dir) == ["ai-series"]


def test_idempotent_in_symlink_mode(root: Path, user_dir: Path) -> None:
    write(user_dir, root, PICKS, SYMLINK)
    before = snapshot(user_dir)
    assert write(user_dir, root, PICKS, SYMLINK).written == 0
    assert snapshot(user_dir) == before
    assert os.readlink(user_dir / "Alpha (2010)/Season 1/Alpha - S01E01.mkv") == "/media/a/1.mkv"


def test_removed_pick_folder_disappears(root: Path, user_dir: Path) -> None:
    write(user_dir, root, PICKS)
    before = snapshot(user_dir)
    stats = write(user_dir, root, PICKS[:2])
    assert not (user_dir / "Gamma (2010)").exists()
    assert stats.written == 0 and stats.removed > 0 and stats.changed_folders == ("Gamma (2010)",)
    after = snapshot(user_dir)
    kept_files = [k for k in before if Path(k).suffix and not k.startswith("Gamma")]
    assert all(after[k] == before[k] for k in kept_files)  # same inode and mtime: carried over, not rewritten


def test_retitled_series_moves_folder(root: Path, user_dir: Path) -> None:
    write(user_dir, root, PICKS)
    stats = write(user_dir, root, [PICKS[0], series(2, "b", "Beta Reborn"), PICKS[2]])
    assert not (user_dir / "Beta (2010)").exists()
    assert (user_dir / "Beta Reborn (2010)" / "Season 1" / "Beta Reborn - S01E02.strm").is_file()
    assert stats.changed_folders == ("Beta (2010)", "Beta Reborn (2010)")


def test_added_episode_writes_only_its_files(root: Path, user_dir: Path) -> None:
    write(user_dir, root, PICKS)
    before = snapshot(user_dir)
    stats = write(user_dir, root, [PICKS[0], with_episodes(PICKS[1], 3), PICKS[2]])
    assert (stats.written, stats.removed) == (2, 0)  # the .strm and its .nfo
    after = snapshot(user_dir)
    new = set(after) - set(before)
    assert new == {"Beta (2010)/Season 1/Beta - S01E03.strm", "Beta (2010)/Season 1/Beta - S01E03.nfo"}
    assert all(after[k] == before[k] for k in before if Path(k).suffix)  # files keep inode and mtime


def test_rank_change_rewrites_only_that_series_nfos(root: Path, user_dir: Path) -> None:
    write(user_dir, root, PICKS)
    before = snapshot(user_dir)
    swapped = [series(1, "a", "Alpha"), series(3, "b", "Beta"), series(2, "c", "Gamma")]
    stats = write(user_dir, root, swapped)
    after = snapshot(user_dir)
    changed = {k for k in before if Path(k).suffix and after[k] != before[k]}
    assert changed == {
        "Beta (2010)/tvshow.nfo",
        "Beta (2010)/Season 00/beta-placeholder.nfo",
        "Gamma (2010)/tvshow.nfo",
        "Gamma (2010)/Season 00/gamma-placeholder.nfo",
    }
    assert stats.written == 4 and stats.changed_folders == ("Beta (2010)", "Gamma (2010)")
    assert b"2124-12-30" in (user_dir / "Beta (2010)/tvshow.nfo").read_bytes()


def test_crash_before_swap_keeps_live_tree_and_next_run_converges(
    root: Path, user_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(user_dir, root, PICKS)
    before = snapshot(user_dir)
    contents = {k: (user_dir / k).read_bytes() for k in files(user_dir) if (user_dir / k).is_file()}

    def crash(staging: Path, live: Path) -> None:
        raise OSError("simulated crash between staging and swap")

    monkeypatch.setattr(writer, "_swap_in", crash)
    new_picks = [series(1, "d", "Delta"), with_episodes(PICKS[0], 5)]
    with pytest.raises(OSError, match="simulated"):
        write(user_dir, root, new_picks)
    assert snapshot(user_dir) == before
    assert {k: (user_dir / k).read_bytes() for k in contents} == contents
    monkeypatch.undo()
    write(user_dir, root, new_picks)
    assert {p.name for p in user_dir.iterdir()} == {"Delta (2010)", "Alpha (2010)"}
    assert write(user_dir, root, new_picks).written == 0
    assert siblings(user_dir) == ["ai-series"]


def test_leftovers_of_a_killed_run_are_cleaned_up(root: Path, user_dir: Path) -> None:
    write(user_dir, root, PICKS)
    for leftover in (".ai-series.aperture-staging-x1", ".ai-series.aperture-old-x2"):
        (user_dir.parent / leftover / "Half (2010)").mkdir(parents=True)
        (user_dir.parent / leftover / "Half (2010)" / "tvshow.nfo").write_text("partial")
    (user_dir.parent / "unrelated").mkdir()
    before = snapshot(user_dir)
    assert write(user_dir, root, PICKS).written == 0
    assert snapshot(user_dir) == before
    assert siblings(user_dir) == ["ai-series", "unrelated"]


def test_swap_falls_back_without_rename_exchange(root: Path, user_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(user_dir, root, PICKS)
    monkeypatch.setattr(writer, "_renameat2", lambda: None)
    write(user_dir, root, PICKS[:1])
    assert {p.name for p in user_dir.iterdir()} == {"Alpha (2010)"}
    assert siblings(user_dir) == ["ai-series"]


def test_rename_exchange_is_used_on_linux(root: Path, user_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if writer._renameat2() is None:
        pytest.skip("no renameat2 here")
    write(user_dir, root, PICKS)
    monkeypatch.setattr(writer.os, "rename", lambda *a: pytest.fail("fell back to rename"))
    write(user_dir, root, PICKS[:1])
    assert {p.name for p in user_dir.iterdir()} == {"Alpha (2010)"}


def test_stray_entries_are_removed(root: Path, user_dir: Path) -> None:
    write(user_dir, root, PICKS)
    (user_dir / "Alpha (2010)" / "Season 1" / "orphan.strm").write_text("x")
    (user_dir / "Alpha (2010)" / "Season 7").mkdir()
    (user_dir / "Alpha (2010)" / "tvshow.nfo").write_text("edited by hand")
    stats = write(user_dir, root, PICKS)
    assert (stats.written, stats.removed) == (1, 2)
    assert not (user_dir / "Alpha (2010)" / "Season 7").exists()
    assert b"<tvshow>" in (user_dir / "Alpha (2010)" / "tvshow.nfo").read_bytes()


def test_symlinks_inside_the_tree_are_unlinked_not_followed(root: Path, user_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_text("keep me")
    (outside / "dir" / "tvshow.nfo").write_text("keep me too")
    write(user_dir, root, PICKS)
    (user_dir / "Alpha (2010)" / "evil.strm").symlink_to(outside / "secret.txt")
    (user_dir / "Evil (2010)").symlink_to(outside / "dir")
    planned_file = user_dir / "Beta (2010)" / "Season 1" / "Beta - S01E01.strm"
    planned_file.unlink()
    planned_file.symlink_to(outside / "dir")  # a link where a planned file belongs
    write(user_dir, root, PICKS)
    assert not (user_dir / "Alpha (2010)" / "evil.strm").is_symlink()
    assert not (user_dir / "Evil (2010)").is_symlink()
    assert not planned_file.is_symlink() and planned_file.read_text().startswith("http://")
    assert (outside / "secret.txt").read_text() == "keep me"
    assert (outside / "dir" / "tvshow.nfo").read_text() == "keep me too"
    assert sorted(p.name for p in outside.rglob("*")) == ["dir", "secret.txt", "tvshow.nfo"]


def test_planned_symlink_over_existing_link_with_other_target(root: Path, user_dir: Path) -> None:
    write(user_dir, root, PICKS, SYMLINK)
    link = user_dir / "Alpha (2010)/Season 1/Alpha - S01E01.mkv"
    moved = [PickedSeries(**{**PICKS[0].__dict__, "episodes": (
        EpisodeSource("a-1", 1, 1, None, "Ep 1", "/media/moved/1.mkv", None, None),)})]  # fmt: skip
    write(user_dir, root, moved, SYMLINK)
    assert os.readlink(link) == "/media/moved/1.mkv"


def test_refuses_user_dir_outside_or_through_escaping_links(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    plan = plan_user_tree(PICKS, STRM).entries
    with pytest.raises(ValueError, match="inside the library root"):
        write_user_tree(outside / "ai-series", plan, root)
    with pytest.raises(ValueError, match="inside the library root"):
        write_user_tree(root / "users" / ".." / ".." / "elsewhere" / "x", plan, root)
    with pytest.raises(ValueError, match="inside the library root"):
        write_user_tree(root, plan, root)
    (root / "users").mkdir()
    (root / "users" / "mallory").symlink_to(outside)
    with pytest.raises(ValueError, match="symlink leaving"):
        write_user_tree(root / "users" / "mallory" / "ai-series", plan, root)
    (root / "users" / "bob").mkdir()
    (root / "users" / "bob" / "ai-series").symlink_to(outside)
    with pytest.raises(ValueError, match="is a symlink"):
        write_user_tree(root / "users" / "bob" / "ai-series", plan, root)
    with pytest.raises(ValueError, match="is a symlink"):
        remove_user_tree(root / "users" / "bob" / "ai-series", root)
    assert list(outside.iterdir()) == []


def test_parent_symlink_inside_root_is_allowed(root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")
    write(root / "alias" / "ai-series", root, PICKS[:1])
    assert (root / "real" / "ai-series" / "Alpha (2010)" / "tvshow.nfo").is_file()


@pytest.mark.parametrize("bad", ["/etc/passwd", "../escape.nfo", "a/../../b", ".", "x" * 256 + "/f", "nul\0/f"])
def test_unsafe_plan_paths_are_rejected(root: Path, user_dir: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        write_user_tree(user_dir, {PurePosixPath(bad): b"x"}, root)
    assert not user_dir.exists()


def test_file_and_folder_clash_rejected(root: Path, user_dir: Path) -> None:
    with pytest.raises(ValueError, match="both"):
        write_user_tree(user_dir, {PurePosixPath("a"): b"x", PurePosixPath("a/b"): Symlink("/t")}, root)


def test_api_key_only_written_when_opted_in(root: Path, user_dir: Path) -> None:
    key = "s3cr3t-api-key"
    write(user_dir, root, PICKS, STRM)
    everything = b"".join((user_dir / f).read_bytes() for f in files(user_dir) if (user_dir / f).is_file())
    assert key.encode() not in everything and b"ApiKey" not in everything and b"api_key" not in everything
    opted = strm_options("jellyfin", "http://jellyfin:8096", key)
    write(user_dir, root, PICKS, opted)
    holding = {f for f in files(user_dir) if (user_dir / f).is_file() and key.encode() in (user_dir / f).read_bytes()}
    assert holding == {f for f in files(user_dir) if f.endswith(".strm") and "placeholder" not in f}


def test_remove_user_tree(root: Path, user_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "media.mkv"
    outside.write_text("real episode")
    write(user_dir, root, PICKS)
    (user_dir / "link.mkv").symlink_to(outside)
    count = len(files(user_dir))
    assert remove_user_tree(user_dir, root) == count
    assert not user_dir.exists() and siblings(user_dir) == []
    assert outside.read_text() == "real episode"
    assert remove_user_tree(user_dir, root) == 0
    assert remove_user_tree(root / "nobody" / "ai-series", root) == 0
    assert not (root / "nobody").exists()


def test_empty_plan_makes_an_empty_folder(root: Path, user_dir: Path) -> None:
    stats = write(user_dir, root, [])
    assert user_dir.is_dir() and list(user_dir.iterdir()) == [] and stats.written == 0
    write(user_dir, root, PICKS[:1])
    write(user_dir, root, [])
    assert list(user_dir.iterdir()) == []


KEY = "s3cr3t-api-key"
KEYED = strm_options("jellyfin", "http://jellyfin:8096", KEY)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Umask 0, so every mode seen is the one the writer chose, not one the umask narrowed."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def modes(top: Path) -> dict[str, int]:
    """Permission bits of every file and folder below top (links have none of their own)."""
    return {k: stat.S_IMODE((top / k).lstat().st_mode) for k in files(top) if not (top / k).is_symlink()}


def holds_key(path: Path) -> bool:
    return path.is_file() and KEY.encode() in path.read_bytes()


def test_files_holding_the_key_are_owner_only_and_nothing_is_wider_than_needed(root, user_dir, open_umask) -> None:
    write(user_dir, root, PICKS, KEYED)
    found = modes(user_dir)
    keyed = {k for k in found if holds_key(user_dir / k)}
    assert keyed and keyed == {k for k in found if k.endswith(".strm") and "placeholder" not in k}
    assert {found[k] for k in keyed} == {0o600}
    assert {found[k] for k in found if (user_dir / k).is_file() and k not in keyed} == {0o644}
    assert {found[k] for k in found if (user_dir / k).is_dir()} == {0o755}  # the server traverses them
    for folder in (user_dir, user_dir.parent, user_dir.parent.parent):  # the user folder and the parents made
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_a_keyed_file_left_world_readable_is_repaired(root, user_dir, open_umask) -> None:
    """An earlier version wrote keyed .strm files 0644: the next write must narrow them (bytes are equal)."""
    plan = plan_user_tree(PICKS, KEYED).entries
    write_user_tree(user_dir, {rel: bytes(e) if isinstance(e, bytes) else e for rel, e in plan.items()}, root)
    keyed = [k for k in files(user_dir) if holds_key(user_dir / k)]
    assert {modes(user_dir)[k] for k in keyed} == {0o644}
    stats = write_user_tree(user_dir, plan, root)
    assert stats.written == len(keyed) == 6 and stats.removed == 0
    assert {modes(user_dir)[k] for k in keyed} == {0o600}
    assert write_user_tree(user_dir, plan, root).written == 0  # and stays repaired


def test_folders_opened_wider_are_narrowed(root, user_dir) -> None:
    write(user_dir, root, PICKS)
    os.chmod(user_dir, 0o777)
    os.chmod(user_dir / "Beta (2010)" / "Season 1", 0o777)
    before = snapshot(user_dir)
    stats = write(user_dir, root, PICKS)
    assert (stats.written, stats.removed, stats.changed_folders) == (0, 0, ())  # nothing for the server to rescan
    assert not stat.S_IMODE(user_dir.stat().st_mode) & 0o022
    assert not stat.S_IMODE((user_dir / "Beta (2010)" / "Season 1").stat().st_mode) & 0o022
    after = snapshot(user_dir)
    assert all(after[k] == before[k] for k in before if Path(k).suffix)  # files carried over, not rewritten
