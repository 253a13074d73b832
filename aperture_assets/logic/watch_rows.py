"""Pure logic for watch history: who is enabled, per-episode state rows and a series' watch state."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from aperture_assets.logic.catalog_rows import as_text, field_float, field_int, parse_datetime, provider_ids
from aperture_assets.logic.names import close_names

if TYPE_CHECKING:
    from aperture_resources.watch_store import PlayedItem

WATCH_FIELDS = ["ProviderIds", "Path"]
STATES = ("not_started", "in_progress", "caught_up", "completed")


def user_row(user: dict) -> tuple:
    policy = user.get("Policy") if isinstance(user.get("Policy"), dict) else {}
    return (str(user["Id"]), as_text(user.get("Name")) or str(user["Id"]), bool(policy.get("IsDisabled")),
            bool(policy.get("IsAdministrator")), parse_datetime(user.get("LastActivityDate")))


def enabled_user_ids(users: Sequence[dict], wanted: Sequence[str]) -> list[str]:
    """Ids of users who get picks: not disabled, and named (by name or id) in APERTURE_USERS if it is set."""
    wanted_keys = {w.casefold() for w in wanted}
    chosen = []
    for user in users:
        user_id, name, disabled, *_ = user_row(user)
        if disabled:
            continue
        if wanted_keys and user_id.casefold() not in wanted_keys and name.casefold() not in wanted_keys:
            continue
        chosen.append(user_id)
    return chosen


def users_to_drop(keys: Iterable[str], listed: Iterable[str], enabled: Iterable[str], missing: Mapping[str, int],
                  reads: int) -> tuple[set[str], set[str]]:
    """(drop, hold) among user partition keys that are not enabled. A user the server lists but who is disabled
    or left out by APERTURE_USERS goes at once; one missing from the list goes only after `reads` successful
    reads in a row without them, and until then is held (neither rebuilt nor removed): one short answer from
    the server is not news."""
    listed, enabled = set(listed), set(enabled)
    gone = {k for k in keys if k not in enabled}
    drop = {k for k in gone if k in listed or missing.get(k, 0) >= reads}
    return drop, gone - drop


def unknown_users(users: Sequence[dict], wanted: Sequence[str]) -> dict[str, list[str]]:
    """Each APERTURE_USERS entry that names no user (by name or id), with up to three close names."""
    users = [u for u in users if isinstance(u, dict)]
    known = {str(u.get(k) or "").casefold() for u in users for k in ("Id", "Name")}
    names = [str(u.get("Name") or "") for u in users]
    return {w: close_names(w, names, cutoff=0.6) for w in wanted if w.casefold() not in known}


@dataclass(frozen=True)
class EpisodeState:
    """One episode's user data as the server reports it."""

    item_id: str
    played: bool
    play_count: int
    last_played_at: datetime | None
    position_ticks: int
    played_percentage: float | None
    is_favorite: bool
    series_id: str | None
    season_number: int | None
    episode_number: int | None
    provider_ids: tuple[str | None, str | None, str | None]
    excluded: bool = False  # in aperture's own picks folders: counted by the server, never a watch row
    # the file: picks the right library copy when ids must be re-matched; a hint, not part of the state
    path: str | None = field(default=None, compare=False)

    @property
    def has_state(self) -> bool:
        return self.played or self.position_ticks > 0 or self.is_favorite


def is_under(path: str | None, root: str) -> bool:
    root = root.rstrip("/")
    return bool(path and root) and (path == root or path.startswith(root + "/"))


def parse_episode(item: dict, exclude_root: str = "") -> EpisodeState | None:
    """One item's user data; None for a malformed item (no usable id)."""
    item_id = item.get("Id")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool):
        return None
    data = item.get("UserData") if isinstance(item.get("UserData"), dict) else {}
    return EpisodeState(
        item_id=str(item_id),
        played=bool(data.get("Played")),
        play_count=max(field_int(data, "PlayCount") or 0, 1 if data.get("Played") else 0),
        last_played_at=parse_datetime(data.get("LastPlayedDate")),
        position_ticks=field_int(data, "PlaybackPositionTicks") or 0,
        played_percentage=field_float(data, "PlayedPercentage"),
        is_favorite=bool(data.get("IsFavorite")),
        series_id=as_text(item.get("SeriesId")),
        season_number=field_int(item, "ParentIndexNumber"),
        episode_number=field_int(item, "IndexNumber"),
        provider_ids=provider_ids(item),
        excluded=is_under(item.get("Path"), exclude_root),
        path=as_text(item.get("Path")),
    )


def episode_states(items: Iterable[dict], exclude_root: str = "") -> dict[str, EpisodeState]:
    """Merge played, resume and favourite episode items by id (a later item wins); items in our own picks
    folders are ignored (their placeholders are marked played by aperture itself)."""
    states: dict[str, EpisodeState] = {}
    for item in items:
        state = parse_episode(item, exclude_root)
        if state is not None and not state.excluded and state.has_state:
            states[state.item_id] = state
    return states


# -- the played set of the incremental read (see aperture_assets/watch_history.py) -----------------------

def played_items(items: Iterable[dict], exclude_root: str = "") -> dict[str, EpisodeState]:
    """Every item of a played-episodes read by id, picks-folder items included (flagged `excluded`): the
    server counts them among the user's played episodes, so the incremental read's count check must too."""
    played: dict[str, EpisodeState] = {}
    for item in items:
        state = parse_episode(item, exclude_root)
        if state is not None:
            played[state.item_id] = state
    return played


def watermark(played: Mapping[str, EpisodeState]) -> datetime | None:
    """The newest LastPlayedDate of the played set: the incremental read stops below it."""
    return max((s.last_played_at for s in played.values() if s.last_played_at is not None), default=None)


def played_before(item: dict, mark: datetime) -> bool:
    """Whether a played item's LastPlayedDate is older than `mark` (an item without one is not)."""
    data = item.get("UserData") if isinstance(item.get("UserData"), dict) else {}
    when = parse_datetime(data.get("LastPlayedDate"))
    return when is not None and when < mark


def merge_window(stored: Mapping[str, EpisodeState], window: Mapping[str, EpisodeState],
                 total: int | None) -> dict[str, EpisodeState] | None:
    """The played set from the last sync's set S and the window W of items played since its watermark
    (W's fresh user data wins), or None when it cannot be proven exact.

    Every item that entered the played set or was played again since the last sync has a LastPlayedDate
    at or after the watermark, so it is in W; the only change W cannot show is an item leaving the set
    (un-marked, deleted, hidden). Leaving only shrinks the server's count while S | W never shrinks, so
    `total == |S | W|` proves nothing left and S | W is the played set exactly. (A back-dated mark is the
    one entry W misses; it grows the count by itself, and is caught unless an item left in the same
    interval; the periodic full read bounds that case.)"""
    if total is None:
        return None
    merged = {**stored, **window}
    return merged if len(merged) == total else None


def watch_states(played: Mapping[str, EpisodeState], others: Iterable[dict],
                 exclude_root: str = "") -> dict[str, EpisodeState]:
    """The user's episode states from the played set and the resume and favourite items, exactly as
    `episode_states` over all three lists would merge them. Favourite flags come from the favourites list
    only (always read in full), never from a stored played item, which may be stale for that flag."""
    states = {item_id: replace(s, is_favorite=False) for item_id, s in played.items()
              if not s.excluded and s.has_state}
    states.update(episode_states(others, exclude_root))
    return states


def series_state(watched: int, available: int, resuming: bool, status: str | None) -> str:
    """The spec's series-level state.

    `completed` only for Ended series; every available episode watched on a Continuing (or unknown)
    series is `caught_up` (new episodes may come); anything started but not finished is `in_progress`.
    """
    if watched == 0 and not resuming:
        return "not_started"
    if available > 0 and watched >= available and not resuming:
        return "completed" if (status or "").casefold() == "ended" else "caught_up"
    return "in_progress"


def played_row(state: EpisodeState) -> tuple:
    """A played item as stored for the next incremental read (watch_store.PLAYED_COLUMNS order)."""
    return (state.item_id, state.play_count, state.last_played_at, state.position_ticks, state.played_percentage,
            state.series_id, state.season_number, state.episode_number, *state.provider_ids, state.excluded)


def stored_played(item: PlayedItem) -> EpisodeState:
    """The inverse of `played_row` (a stored item is played; its favourite flag is never stored)."""
    return EpisodeState(item_id=item.item_id, played=True, play_count=item.play_count,
                        last_played_at=item.last_played_at, position_ticks=item.position_ticks,
                        played_percentage=item.played_percentage, is_favorite=False, series_id=item.series_id,
                        season_number=item.season_number, episode_number=item.episode_number,
                        provider_ids=(item.tvdb_id, item.tmdb_id, item.imdb_id), excluded=item.excluded)


def read_digest(played: Mapping[str, EpisodeState], others: Sequence[dict], favorite_series: Sequence[dict],
                disliked_series: Sequence[dict], exclude_root: str) -> str:
    """A digest of everything a user's read feeds into the watch rows (the played set as stored, the resume and
    favourite items in their order, favourite and disliked series, the picks root). With the same catalog, an
    equal digest means those writes would change nothing, so the sync skips them. Items under the picks root are
    left out: they never become watch rows, and aperture marks its own placeholders played, which must not make
    every user's next sync look changed. Played items' paths are left out too (a stored item has none, so an
    incremental read could never match a full one): they matter only to items matched by provider ids, and the
    caller keeps no digest for a read that had any."""
    payload = [exclude_root, [(*played_row(s), s.played) for _, s in sorted(played.items()) if not s.excluded],
               [item for item in others if not is_under(item.get("Path"), exclude_root)],
               list(favorite_series), list(disliked_series)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
