"""The writer's no-change fast path: a manifest of the inputs' digest and the tree's lstat records lets an
unchanged run skip planning, while anything changed on disk or in the inputs still goes the full way."""

import json
import os
from datetime import date
from pathlib import Path

import pytest

from aperture_resources.library.model import EpisodeSource, LibraryOptions, PickedSeries
from aperture_resources.library.tree import SKIP_REASONS, plan_digest, plan_user_tree
from aperture_resources.library.writer import unchanged_tree, write_user_tree
from tests.conftest import strm_options

KEY = "secret-api-key-0123456789"
SYMLINK = LibraryOptions(mode="symlink", media_roots=("/media/tv",))
STRM = strm_options("emby", "http://emby:8096", KEY)


def pick(rank: int, sid: str, episodes: int = 3) -> PickedSeries:
    eps = tuple(EpisodeSource(f"{sid}{i}", 1, i, None, f"Episode {i}", f"/media/tv/{sid}/{i}.mkv", date(2020, 1, i),
                              None) for i in range(1, episodes + 1))
    return PickedSeries(rank, sid, f"Show {sid}", 2001, None, "plot", ("Drama",), (), "Ended", None, None, None,
                        None, None, None, None, eps)


PICKS = [pick(1, "a"), pick(2, "b")]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


@pytest.fixture
def user_dir(root: Path) -> Path:
    return root / "users" / "alice [a1]" / "ai-series"


def sync(user_dir: Path, root: Path, picks: list[PickedSeries], options: LibraryOptions = SYMLINK) -> tuple:
    """What the asset does: (fast path taken, files written)."""
    digest = plan_digest(picks, options)
    if unchanged_tree(user_dir, root, digest) is not None:
        return True, 0
    plan = plan_user_tree(picks, options)
    return False, write_user_tree(user_dir, plan.entries, root, inputs=digest, info=plan.skipped).written


def manifest(user_dir: Path) -> Path:
    return user_dir.parent / ".ai-series.manifest.json"


def test_no_change_run_takes_the_fast_path_and_plans_nothing(root, user_dir, monkeypatch):
    planned = len(plan_user_tree(PICKS, SYMLINK).entries)
    assert sync(user_dir, root, PICKS) == (False, planned)
    calls = []
    monkeypatch.setattr("aperture_resources.library.tree.plan_user_tree", lambda *a: calls.append(a))
    before = {p: p.lstat() for p in user_dir.rglob("*")}
    found = unchanged_tree(user_dir, root, plan_digest(PICKS, SYMLINK))
    assert found is not None and found.entries == planned
    assert found.info == dict.fromkeys(SKIP_REASONS, 0)
    assert calls == []
    assert {p: p.lstat() for p in user_dir.rglob("*")} == before


def test_hand_edited_nfo_is_repaired(root, user_dir):
    sync(user_dir, root, PICKS)
    nfo = next(user_dir.rglob("tvshow.nfo"))
    good = nfo.read_bytes()
    stat = nfo.stat()
    nfo.write_bytes(good.replace(b"<plot>plot</plot>", b"<plot>PLOT</plot>"))  # same size
    os.utime(nfo, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old mtime: ctime still tells
    assert sync(user_dir, root, PICKS) == (False, 1)
    assert nfo.read_bytes() == good
    assert sync(user_dir, root, PICKS) == (True, 0)


def test_deleted_episode_link_is_repaired(root, user_dir):
    sync(user_dir, root, PICKS)
    link = next(user_dir.rglob("*S01E02.mkv"))
    link.unlink()
    assert sync(user_dir, root, PICKS) == (False, 1)
    assert os.readlink(link) == "/media/tv/a/2.mkv" or os.readlink(link) == "/media/tv/b/2.mkv"
    assert sync(user_dir, root, PICKS) == (True, 0)


def test_stray_file_is_removed(root, user_dir):
    sync(user_dir, root, PICKS)
    stray = next(user_dir.iterdir()) / "stray.txt"
    stray.write_text("x")
    assert sync(user_dir, root, PICKS)[0] is False
    assert not stray.exists()
    assert sync(user_dir, root, PICKS) == (True, 0)


def test_touched_file_with_equal_bytes_is_re_recorded_without_a_write(root, user_dir):
    sync(user_dir, root, PICKS)
    os.utime(next(user_dir.rglob("tvshow.nfo")))
    assert sync(user_dir, root, PICKS) == (False, 0)
    assert sync(user_dir, root, PICKS) == (True, 0)


def test_changed_picks_or_options_invalidate_the_manifest(root, user_dir):
    sync(user_dir, root, PICKS)
    assert sync(user_dir, root, [pick(1, "b"), pick(2, "a")]) == (False, 4)  # swapped ranks: 2 NFOs each
    assert sync(user_dir, root, [pick(1, "b"), pick(2, "a"), pick(3, "c")])[0] is False
    assert sync(user_dir, root, [pick(1, "b"), pick(2, "a"), pick(3, "c", episodes=4)])[0] is False  # new episode
    other = LibraryOptions(mode="symlink", media_roots=("/media/tv", "/media/more"))
    assert sync(user_dir, root, [pick(1, "b"), pick(2, "a"), pick(3, "c", episodes=4)], other)[0] is False


def test_changed_media_roots_relink(root, user_dir):
    """A TV library removed from the server takes its links with it at once, though no pick changed."""
    sync(user_dir, root, PICKS)
    narrowed = LibraryOptions(mode="symlink", media_roots=("/media/tv/a",))
    assert sync(user_dir, root, PICKS, narrowed)[0] is False
    assert sorted(os.readlink(link) for link in user_dir.rglob("*.mkv")) == [f"/media/tv/a/{i}.mkv" for i in (1, 2, 3)]
    assert unchanged_tree(user_dir, root, plan_digest(PICKS, narrowed)).info["outside_library"] == 3


def test_write_without_digest_drops_the_manifest(root, user_dir):
    sync(user_dir, root, PICKS)
    assert manifest(user_dir).exists()
    write_user_tree(user_dir, plan_user_tree(PICKS[:1], SYMLINK).entries, root)
    assert not manifest(user_dir).exists()
    assert unchanged_tree(user_dir, root, plan_digest(PICKS[:1], SYMLINK)) is None


def test_manifest_stays_inside_the_root_and_holds_no_key(root, user_dir):
    sync(user_dir, root, PICKS, STRM)
    assert any(KEY in p.read_text() for p in user_dir.rglob("*.strm"))  # opted in: the key is in the URLs
    text = manifest(user_dir).read_text()
    assert KEY not in text
    for rel in json.loads(text)["entries"]:
        assert not rel.startswith("/") and ".." not in rel.split("/")
        assert (user_dir / rel).resolve().is_relative_to(user_dir.resolve()) if rel != "." else True
    assert sync(user_dir, root, PICKS, STRM) == (True, 0)


def test_a_keyed_file_made_world_readable_is_found_and_narrowed(root, user_dir):
    sync(user_dir, root, PICKS, STRM)
    keyed = next(p for p in user_dir.rglob("*.strm") if KEY in p.read_text())
    assert keyed.stat().st_mode & 0o777 == 0o600
    keyed.chmod(0o644)  # the bytes and mtime stay; the manifest's ctime no longer matches
    assert sync(user_dir, root, PICKS, STRM) == (False, 1)
    assert keyed.stat().st_mode & 0o777 == 0o600
    assert sync(user_dir, root, PICKS, STRM) == (True, 0)


def test_a_tampered_manifest_is_ignored(root, user_dir):
    sync(user_dir, root, PICKS)
    body = json.loads(manifest(user_dir).read_text())
    body["entries"]["../../etc/passwd"] = ["file", 1, 1, 1, 1]
    manifest(user_dir).write_text(json.dumps(body))
    assert sync(user_dir, root, PICKS) == (False, 0)
    assert sync(user_dir, root, PICKS) == (True, 0)
