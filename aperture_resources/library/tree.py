"""Plan one user's library tree as data: relative path -> file bytes or symlink, with no I/O.

Layout (both servers parse it as a TV library):

    <Series Title> (<Year>)/tvshow.nfo
    <Series Title> (<Year>)/Season 00/<slug>-placeholder.strm + .nfo     Emby home-row sorting placeholder
    <Series Title> (<Year>)/Season <n>/<Series Title> - SxxEyy.<ext> (+ .nfo in strm mode)

Decisions:
- The placeholder .strm holds one fixed URL on a reserved domain (PLACEHOLDER_URL). Jellyfin >= 10.11.8 skips
  .strm lines that are not http(s)/rtsp/rtp URLs, so it must be a URL; it carries no item id, no API key and
  not the server's address, so it is never rewritten: not when episodes come and go, nor when the server moves.
- The placeholder is special number 9999 (PLACEHOLDER_EPISODE), far above real specials so it stays stable
  as specials get added; only a series whose specials already reach 9999 gets max + 1. Its file name
  (`<slug>-placeholder`) has no " - S00E" token, so it can never be the name of a real special.
- Episode NFOs are written in strm mode only: a .strm cannot be probed, so its NFO is where title, air date and
  runtime come from. In symlink mode the server probes the real file and fetches episode metadata as it did
  for the original library (the spec's output structure has no episode NFOs either); skipping them halves
  the files of a first write, which is bound by file creation on disk.
- Symlink mode links only what is certainly a video in the server's own TV libraries, because the server
  follows the link and serves whatever it points at: an episode path from the server (or a database it wrote)
  could name any host file (`/etc/...`, `../../root/...`). A path must be absolute, already normalised (no
  `.`/`..` segments, no doubled slashes), under one of `LibraryOptions.media_roots` and end in a known video
  extension; others are skipped and counted ("outside_library", "not_video"; "no_path" when there is none), as
  are unnumbered episodes and second copies of the same episode number. No media roots, no links.
- Episode .strm files in strm mode hold stream URLs, which carry the API key (strm mode is refused without the
  opt-in), so they are PrivateBytes: the writer makes them readable by their owner only.
- Link targets are the server's own paths, verbatim: the media server is what follows the links, so a target
  translated to where aperture sees the media would be wrong for it. Only the library root differs between
  the two sides (APERTURE_LIBRARY_ROOT / APERTURE_MEDIA_SERVER_LIBRARY_ROOT).
- `plan_digest` fingerprints everything the plan depends on (picks with their episode rows, options, and
  the code that renders them), so the writer can skip planning when nothing changed (see writer.py).
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote

from aperture_resources.library.model import (
    Entry,
    EpisodeSource,
    LibraryOptions,
    PickedSeries,
    PrivateBytes,
    Symlink,
)
from aperture_resources.library.naming import episode_stem, season_folder_name, series_folder_names, slug
from aperture_resources.library.nfo import episode_nfo, placeholder_nfo, tvshow_nfo

PLACEHOLDER_EPISODE = 9999
SKIP_REASONS = ("unnumbered", "no_path", "outside_library", "not_video", "duplicate")
VIDEO_EXTENSIONS = frozenset({".mkv", ".mp4", ".m4v", ".avi", ".mov", ".wmv", ".ts", ".m2ts", ".mts", ".webm", ".mpg",
                              ".mpeg", ".flv", ".ogv", ".3gp", ".vob", ".divx", ".iso"})


@dataclass(frozen=True)
class TreePlan:
    entries: dict[PurePosixPath, Entry]  # path relative to the user's library folder
    skipped: dict[str, int]  # episodes left out, by reason (SKIP_REASONS)


def stream_url(item_id: str, options: LibraryOptions) -> str:
    """The server's static stream URL for an item (the media-server client built the template, with the API
    key only when the user opted in)."""
    return str(options.stream_url).replace("{item_id}", quote(item_id, safe=""))


# What the Season 00 sorting placeholder "plays": a fixed http URL (Jellyfin >= 10.11.8 skips .strm lines that
# are not http(s)/rtsp/rtp URLs) on a reserved domain that never resolves, so no file depends on the server's
# address and a server that moves rewrites nothing.
PLACEHOLDER_URL = "http://aperture.invalid/placeholder"


def placeholder_episode_number(episodes: Iterable[EpisodeSource]) -> int:
    """PLACEHOLDER_EPISODE unless real specials already use it, then one above the highest special."""
    highest = max((max(e.episode or 0, e.episode_end or 0) for e in episodes if e.season == 0), default=0)
    return PLACEHOLDER_EPISODE if highest < PLACEHOLDER_EPISODE else highest + 1


def _roots(options: LibraryOptions) -> tuple[str, ...]:
    """The media roots as folder prefixes ("/media/tv/"); a root that is not an absolute path is dropped."""
    roots = (posixpath.normpath(root) for root in options.media_roots if root.startswith("/") and "\0" not in root)
    return tuple(root.rstrip("/") + "/" for root in roots)


def _media_entry(episode: EpisodeSource, options: LibraryOptions, roots: tuple[str, ...]) -> tuple[str, Entry] | str:
    """(extension, entry) for an episode's media file, or the skip reason when symlink mode may not link it."""
    if options.mode == "strm":
        return ".strm", PrivateBytes((stream_url(episode.item_id, options) + "\n").encode("utf-8"))
    target = episode.path
    if not target:
        return "no_path"
    if "\0" in target or posixpath.normpath(target) != target or not target.startswith(roots):
        return "outside_library"  # relative, not normalised (".."), a Windows path, or not under a TV library
    suffix = posixpath.splitext(target)[1].lower()
    if suffix not in VIDEO_EXTENSIONS:
        return "not_video"
    return suffix, Symlink(target)


def plan_user_tree(picks: Iterable[PickedSeries], options: LibraryOptions) -> TreePlan:
    """Every file and link of one user's library, for the writer to reconcile the disk against."""
    picks = sorted(picks, key=lambda p: (p.rank, p.series_id))
    duplicates = [sid for sid, n in Counter(p.series_id for p in picks).items() if n > 1]
    if duplicates:
        raise ValueError(f"series picked more than once: {duplicates}")
    folders = series_folder_names(picks)
    roots = _roots(options)
    entries: dict[PurePosixPath, Entry] = {}
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    for pick in picks:
        folder = PurePosixPath(folders[pick.series_id])
        entries[folder / "tvshow.nfo"] = tvshow_nfo(pick)
        numbered = [e for e in pick.episodes if e.season is not None and e.episode is not None]
        numbered = [e for e in numbered if e.season >= 0 and e.episode >= 0]
        skipped["unnumbered"] += len(pick.episodes) - len(numbered)

        placeholder = f"{slug(pick.title)}-placeholder"
        specials = folder / season_folder_name(0)
        entries[specials / f"{placeholder}.strm"] = (PLACEHOLDER_URL + "\n").encode("utf-8")
        entries[specials / f"{placeholder}.nfo"] = placeholder_nfo(pick, placeholder_episode_number(numbered))

        stems: set[PurePosixPath] = set()
        for episode in sorted(numbered, key=lambda e: (e.season, e.episode, e.episode_end or 0, e.item_id)):
            media = _media_entry(episode, options, roots)
            if isinstance(media, str):
                skipped[media] += 1
                continue
            season_dir = folder / season_folder_name(episode.season)
            stem = season_dir / episode_stem(pick.title, episode.season, episode.episode, episode.episode_end)
            if stem in stems:
                skipped["duplicate"] += 1
                continue
            stems.add(stem)
            extension, entry = media
            entries[stem.with_name(stem.name + extension)] = entry
            if options.mode == "strm":
                entries[stem.with_name(stem.name + ".nfo")] = episode_nfo(pick.title, episode)
    return TreePlan(entries=entries, skipped=skipped)


# Bump when the plan changes in a way the hashed sources below would not show (e.g. a new input field).
TREE_FORMAT = 1
_PLAN_SOURCES = ("model.py", "naming.py", "nfo.py", "tree.py")


@functools.cache
def _code_version() -> str:
    """The code and data the plan's bytes depend on: this package's planning modules, lxml, Unicode tables."""
    from lxml import etree

    here = PurePosixPath(__file__).parent
    digest = hashlib.sha256(f"{TREE_FORMAT}|{etree.LXML_VERSION}|{unicodedata.unidata_version}".encode())
    for name in _PLAN_SOURCES:
        with open(here / name, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def plan_digest(picks: Iterable[PickedSeries], options: LibraryOptions) -> str:
    """A hex digest of everything `plan_user_tree` reads: equal digests mean an identical plan.

    Built from the dataclasses' reprs (str, int, float, date and tuples only, so stable across runs); the
    API key, when opted in, only enters the hash, never the output."""
    digest = hashlib.sha256(_code_version().encode())
    digest.update(repr(options).encode())
    for pick in sorted(picks, key=lambda p: (p.rank, p.series_id)):
        digest.update(repr(pick).encode())
    return digest.hexdigest()
