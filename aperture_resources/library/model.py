"""Input contract of the library writer (what the recommender hands over) and the planned tree entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal


@dataclass(frozen=True)
class EpisodeSource:
    item_id: str  # media-server item id of the real episode
    season: int | None  # ParentIndexNumber (0 = specials)
    episode: int | None  # IndexNumber (None = unnumbered: skipped and counted)
    episode_end: int | None  # IndexNumberEnd (multi-episode file)
    name: str | None
    path: str | None  # the real file path as the media server sees it
    premiere_date: date | None
    runtime_ticks: int | None  # 10^7 per second


@dataclass(frozen=True)
class PickedSeries:
    rank: int  # 1 = best
    series_id: str
    title: str
    year: int | None
    original_title: str | None
    overview: str | None
    genres: tuple[str, ...]
    studios: tuple[str, ...]
    status: str | None  # Continuing / Ended
    official_rating: str | None
    community_rating: float | None
    premiere_date: date | None
    end_year: int | None
    tvdb_id: str | None
    tmdb_id: str | None
    imdb_id: str | None
    episodes: tuple[EpisodeSource, ...]
    reason: str | None = None  # one short line of why it was picked (the NFO plot starts with it)
    library_id: str | None = None  # the copy's library (ItemId): with path and tags, what access rules check
    path: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class LibraryOptions:
    mode: Literal["symlink", "strm"]
    stream_url: str | None = None  # strm mode: the server's stream URL, "{item_id}" standing for the item
    # Symlink mode: the server's own TV library folders (the Locations of its tvshows libraries, as the server
    # sees them). Links only ever point under one of them; none means no episode is linked.
    media_roots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ("symlink", "strm"):
            raise ValueError(f"unknown library mode {self.mode!r}")
        if self.mode == "strm" and "{item_id}" not in (self.stream_url or ""):
            raise ValueError("strm mode needs a stream URL with {item_id}")


@dataclass(frozen=True)
class Symlink:
    """A planned symbolic link; `target` is written verbatim (never resolved by the writer)."""

    target: str


class PrivateBytes(bytes):
    """File contents holding a secret (a stream URL carrying the API key): written readable by the owner only."""


# A planned tree entry: file contents (PrivateBytes when they hold a secret), or a symlink.
Entry = bytes | Symlink
