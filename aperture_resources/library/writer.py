"""Make a user's library folder on disk match a planned tree: diff-based, atomic, confined to the library root.

Why a whole-folder swap: the media server may scan at any moment, so it must only ever see the previous
tree or the next one, never a half-written mix (and never a series folder missing its tvshow.nfo). The new
version is built in a hidden sibling (`.<name>.aperture-staging-*`): unchanged entries are hard-linked from
the live tree (same inode, same mtime, so the server sees them as untouched), changed ones are written fresh.
Then one `renameat2(RENAME_EXCHANGE)` swaps the two folders atomically and the old version is deleted. Where
the kernel or filesystem lacks RENAME_EXCHANGE it falls back to rename-aside + rename (a window of a few
microseconds with no folder). A per-series swap would leave a crash with some series new and some old; the
whole-folder swap costs one hard link per unchanged entry, which is cheap.

A run with nothing to change returns before creating anything, so no file, folder, inode or mtime is
touched. Staging left behind by a killed run is deleted by the next run, under a lock on the parent folder
that also keeps two writers for the same user apart. Durability against power loss is not sought (no fsync):
the next run compares bytes and rewrites anything that came back truncated.

No-change fast path (a manifest): after every successful write the writer records, beside the user folder
(`.<name>.manifest.json`), the caller's digest of the plan's inputs and one lstat tuple per entry of the tree
as it now is: relative path, kind, size, mtime_ns, ctime_ns, inode (never a link target or file contents,
so no secret from a .strm URL; paths are relative to the user folder and checked on load). `unchanged_tree`
answers "is the tree on disk still exactly what the plan for these inputs produced?" without planning or
reading a byte: the digest must match and a scandir walk must find exactly the recorded entries with the
recorded tuples. Any edit, deletion, addition, chmod or replacement changes ctime (which no user call can set)
or the inode or the entry set, so the caller falls back to the full plan + byte comparison, which repairs it.
The tuples are taken after the swap and after the old version was deleted, because both change the ctime
of carried-over (hard-linked) entries. A write without a digest deletes the manifest.

Syscalls: creating ~60,000 small files is bound by the disk's metadata latency, so the build uses plain
os.open/os.write/os.close, os.symlink and os.mkdir on str paths (no buffered file objects, no fsync, no
per-file chmod or stat).

Modes: the media server (often another user, or a container) must traverse every folder and read every
file, so folders are 0755 and files 0644 at most (the umask may narrow them, never widen them); nothing is
group- or world-writable. Files holding the API key (`PrivateBytes`: keyed .strm URLs) are created 0600, never
wider even for a moment, so the server must read them as aperture's own user (or root), as container set-ups
sharing one PUID do. A file or folder found wider than that (a keyed file from an older version, a chmod) is
rewritten by the next write, like any other difference.

Safety: relative plan paths are validated (no absolute paths, no "..", no over-long names); the user folder
must lie inside the library root, every existing parent is checked and a parent symlink that resolves
outside the root is refused; the user folder itself must not be a symlink. The live tree is scanned and
deleted without following symlinks: a link is removed as a link, its target is never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import json
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aperture_resources.library.model import Entry, PrivateBytes, Symlink
from aperture_resources.library.naming import MAX_COMPONENT_BYTES

MANIFEST_VERSION = 1
FOLDER_MODE = 0o755
FILE_MODE = 0o644
PRIVATE_FILE_MODE = 0o600
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@dataclass(frozen=True)
class WriteStats:
    written: int  # planned entries created or rewritten
    unchanged: int  # planned entries already on disk exactly as planned
    removed: int  # entries on disk that are no longer planned (files, links and folders)
    changed_folders: tuple[str, ...]  # top-level (series) folders with any change, for a targeted rescan


@dataclass(frozen=True)
class _Live:
    kind: str  # file | link | dir | other
    size: int = 0
    target: str = ""
    mode: int = 0  # permission bits (files and folders)


def _file_mode(data: bytes) -> int:
    return PRIVATE_FILE_MODE if isinstance(data, PrivateBytes) else FILE_MODE


def _tag(name: str, kind: str) -> str:
    return f".{name[:100]}.aperture-{kind}-"


def _planned_dirs(plan: Mapping[PurePosixPath, Entry]) -> set[PurePosixPath]:
    """Folders implied by the plan; raises on any path that could leave the user folder or clash."""
    dirs: set[PurePosixPath] = set()
    for rel in plan:
        bad = [p for p in rel.parts if p in ("", ".", "..") or "\0" in p or len(p.encode()) > MAX_COMPONENT_BYTES]
        if rel.is_absolute() or not rel.parts or bad:
            raise ValueError(f"unsafe planned path {str(rel)!r}")
        dirs.update(rel.parents)
    dirs.discard(PurePosixPath("."))
    clashes = dirs.intersection(plan)
    if clashes:
        raise ValueError(f"planned both as file and folder: {sorted(map(str, clashes))}")
    return dirs


def _user_dir(user_dir: Path, library_root: Path, create_parents: bool) -> tuple[Path, Path]:
    """(checked user folder, resolved root): refuses anything outside the root or reached through an escaping link."""
    root = library_root.resolve(strict=True)
    if not root.is_dir():
        raise NotADirectoryError(f"library root {root} is not a folder")
    target = Path(os.path.abspath(user_dir))
    bases = (Path(os.path.abspath(library_root)), root)
    rel = next((target.relative_to(b) for b in bases if target.is_relative_to(b)), None)
    if rel is None or not rel.parts:
        raise ValueError(f"user folder {user_dir} must be strictly inside the library root {root}")
    current = root
    for i, part in enumerate(rel.parts[:-1]):
        current = current / part
        if current.is_symlink():
            current = current.resolve(strict=True)
            if not current.is_relative_to(root):
                raise ValueError(f"{user_dir}: parent {part!r} is a symlink leaving the library root")
        elif not current.exists():
            if not create_parents:
                return current.joinpath(*rel.parts[i + 1 :]), root
            current.mkdir(FOLDER_MODE)
        if not current.is_dir():
            raise NotADirectoryError(f"{current} is not a folder")
    live = current / rel.parts[-1]
    if live.is_symlink():
        raise ValueError(f"user folder {live} is a symlink; refusing to write through it")
    if live.exists() and not live.is_dir():
        raise NotADirectoryError(f"user folder {live} exists and is not a folder")
    return live, root


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Exclusive flock on a folder; best effort (some network filesystems refuse flock on folders)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _remove(path: Path, root: Path) -> None:
    """Delete a file, link or folder tree without following any symlink; never outside root."""
    if not path.parent.resolve().is_relative_to(root):
        raise ValueError(f"refusing to delete {path}: outside the library root")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # unlinks symlinks inside, never descends into them
    else:
        path.unlink(missing_ok=True)


def _remove_leftovers(live: Path, root: Path) -> None:
    prefixes = (_tag(live.name, "staging"), _tag(live.name, "old"))
    for path in live.parent.iterdir():
        if path.name.startswith(prefixes):
            _remove(path, root)


def _scan(top: Path) -> dict[PurePosixPath, _Live]:
    """Every entry below top, without following symlinks."""
    found: dict[PurePosixPath, _Live] = {}
    pending = [PurePosixPath()]
    while pending:
        rel = pending.pop()
        with os.scandir(top / rel) as entries:
            for entry in entries:
                child = rel / entry.name
                if entry.is_symlink():
                    found[child] = _Live("link", target=os.readlink(entry.path))
                elif entry.is_dir(follow_symlinks=False):
                    found[child] = _Live("dir", mode=stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode))
                    pending.append(child)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    found[child] = _Live("file", size=st.st_size, mode=stat.S_IMODE(st.st_mode))
                else:
                    found[child] = _Live("other")
    return found


def _same(path: Path, live: _Live, entry: Entry) -> bool:
    if isinstance(entry, Symlink):
        return live.kind == "link" and live.target == entry.target
    if live.kind != "file" or live.size != len(entry) or live.mode & ~_file_mode(entry):
        return False
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
        return f.read() == entry


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, _file_mode(data))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _carry(src: Path, dst: Path) -> None:
    """Bring an unchanged entry into staging keeping its inode and mtime (copy where hard links fail)."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _build(
    staging: Path, plan: Mapping[PurePosixPath, Entry], dirs: set[PurePosixPath], keep: set[PurePosixPath], live: Path
) -> None:
    """Fill staging: folders first, then unchanged entries carried over from live and changed ones written."""
    top = os.fspath(staging)
    for rel in sorted(dirs, key=lambda d: len(d.parts)):
        os.mkdir(f"{top}/{rel}", FOLDER_MODE)
    for rel, entry in plan.items():
        if rel in keep:
            _carry(live / rel, staging / rel)
        elif isinstance(entry, Symlink):
            os.symlink(entry.target, f"{top}/{rel}")
        else:
            _write(f"{top}/{rel}", entry)


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two folders; False where the platform or filesystem cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(staging: Path, live: Path) -> Path | None:
    """Put staging in place of live; returns where the previous version now is (None if there was none)."""
    if not live.exists():
        os.rename(staging, live)
        return None
    if _exchange(staging, live):
        return staging
    aside = live.parent / (_tag(live.name, "old") + secrets.token_hex(4))
    os.rename(live, aside)
    os.rename(staging, live)
    return aside


def _manifest_path(live: Path) -> Path:
    return live.parent / f".{live.name[:100]}.manifest.json"


def _kind(mode: int) -> str:
    return "link" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def _fingerprint(live: Path) -> dict[str, list]:
    """{relative path: [kind, size, mtime_ns, ctime_ns, inode]} for the folder itself (".") and everything
    below it, from lstat (symlinks are never followed)."""
    def row(st: os.stat_result) -> list:
        return [_kind(st.st_mode), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]

    found = {".": row(os.lstat(live))}
    pending = [("", os.fspath(live))]
    while pending:
        prefix, folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = prefix + entry.name
                found[rel] = row(entry.stat(follow_symlinks=False))
                if entry.is_dir(follow_symlinks=False):
                    pending.append((rel + "/", entry.path))
    return found


def _save_manifest(live: Path, inputs: str | None, info: Mapping | None) -> None:
    """Record the tree as it is now (call under the lock, after the swap and the old version's removal)."""
    path = _manifest_path(live)
    if inputs is None:
        path.unlink(missing_ok=True)
        return
    body = {"version": MANIFEST_VERSION, "inputs": inputs, "info": dict(info or {}), "entries": _fingerprint(live)}
    temp = path.with_name(path.name + ".tmp")
    temp.unlink(missing_ok=True)
    _write(os.fspath(temp), json.dumps(body, separators=(",", ":")).encode())
    os.replace(temp, path)


def _load_manifest(live: Path) -> dict | None:
    try:
        with open(_manifest_path(live), "rb") as f:
            body = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("version") != MANIFEST_VERSION:
        return None
    # The entries are only ever compared with a fresh walk of the folder (whose keys are plain relative paths),
    # never used to open, write or delete anything: a tampered entry can only make the comparison fail.
    return body if isinstance(body.get("entries"), dict) else None


@dataclass(frozen=True)
class Unchanged:
    entries: int  # files and links in the tree (what `WriteStats.unchanged` would count)
    info: dict  # what the caller stored with the manifest


def unchanged_tree(user_dir: Path, library_root: Path, inputs: str) -> Unchanged | None:
    """The manifest's record if user_dir is exactly what the last write for `inputs` left; else None.

    Costs one lstat per entry and no planning; None means "do the full write", never "something is wrong"."""
    live, root = _user_dir(user_dir, library_root, create_parents=False)
    if not live.is_dir():
        return None
    with _locked(live.parent):
        _remove_leftovers(live, root)
        manifest = _load_manifest(live)
        if manifest is None or manifest.get("inputs") != inputs:
            return None
        try:
            if _fingerprint(live) != manifest["entries"]:
                return None
        except OSError:
            return None
    count = sum(1 for row in manifest["entries"].values() if row[0] in ("file", "link"))
    return Unchanged(entries=count, info=manifest.get("info") or {})


def write_user_tree(user_dir: Path, plan: Mapping[PurePosixPath, Entry], library_root: Path,
                    inputs: str | None = None, info: Mapping | None = None) -> WriteStats:
    """Make user_dir hold exactly `plan` (paths relative to user_dir); atomic for readers, no-op when equal.

    `inputs`: the caller's digest of what determined the plan; recorded with the tree for `unchanged_tree`
    (with `info`, small JSON-able data handed back by it). Without it any manifest is deleted."""
    dirs = _planned_dirs(plan)
    live, root = _user_dir(user_dir, library_root, create_parents=True)
    with _locked(live.parent):
        _remove_leftovers(live, root)
        live_mode = stat.S_IMODE(live.stat().st_mode) if live.exists() else FOLDER_MODE
        existing = _scan(live) if live.exists() else {}
        keep = {rel for rel, entry in plan.items() if rel in existing and _same(live / rel, existing[rel], entry)}
        written = [rel for rel in plan if rel not in keep]
        removed = [rel for rel, e in existing.items() if rel not in plan and not (e.kind == "dir" and rel in dirs)]
        folders = tuple(sorted({rel.parts[0] for rel in (*written, *removed)}))
        stats = WriteStats(written=len(written), unchanged=len(keep), removed=len(removed), changed_folders=folders)
        too_open = live_mode & ~FOLDER_MODE or any(e.kind == "dir" and e.mode & ~FOLDER_MODE for e in existing.values())
        if live.exists() and not written and not removed and not too_open:
            # Equal bytes but no valid record (e.g. a touched file, or the first run with manifests): re-record.
            _save_manifest(live, inputs, info)
            return stats
        staging = Path(tempfile.mkdtemp(prefix=_tag(live.name, "staging"), dir=live.parent))
        try:
            os.chmod(staging, live_mode & FOLDER_MODE)
            _build(staging, plan, dirs, keep, live)
            previous = _swap_in(staging, live)
        except BaseException:
            _remove(staging, root)
            raise
        if previous is not None:
            _remove(previous, root)
        _save_manifest(live, inputs, info)
    return stats


def ensure_user_dir(user_dir: Path, library_root: Path) -> None:
    """Create the (empty) user folder if missing, with the same checks as a write, so a server library can be
    created at it before its first tree is written (the first write then swaps in over the empty folder)."""
    live, _ = _user_dir(user_dir, library_root, create_parents=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(live, FOLDER_MODE)


def remove_user_tree(user_dir: Path, library_root: Path) -> int:
    """Delete a user's library folder (user disabled or removed); returns the number of entries removed."""
    live, root = _user_dir(user_dir, library_root, create_parents=False)
    if not live.parent.is_dir():
        return 0
    with _locked(live.parent):
        _remove_leftovers(live, root)
        if not live.exists():
            return 0
        count = len(_scan(live))
        aside = live.parent / (_tag(live.name, "old") + secrets.token_hex(4))
        os.rename(live, aside)  # vanishes in one step for the media server
        _remove(aside, root)
    return count
