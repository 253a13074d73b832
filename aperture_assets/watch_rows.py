"""Pure logic for watch history: who is enabled, per-episode state rows and a series' watch state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aperture_assets.catalog_rows import as_float, as_int, as_text, parse_datetime, provider_ids

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

    @property
    def has_state(self) -> bool:
        return self.played or self.position_ticks > 0 or self.is_favorite


def is_under(path: str | None, root: str) -> bool:
    root = root.rstrip("/")
    return bool(path and root) and (path == root or path.startswith(root + "/"))


def episode_states(items: Iterable[dict], exclude_root: str = "") -> dict[str, EpisodeState]:
    """Merge played, resume and favourite episode items by id; items in our own picks folders are ignored
    (their placeholders are marked played by aperture itself)."""
    states: dict[str, EpisodeState] = {}
    for item in items:
        item_id = item.get("Id")
        if not isinstance(item_id, str | int) or isinstance(item_id, bool) or is_under(item.get("Path"), exclude_root):
            continue
        data = item.get("UserData") if isinstance(item.get("UserData"), dict) else {}
        state = EpisodeState(
            item_id=str(item_id),
            played=bool(data.get("Played")),
            play_count=max(as_int(data.get("PlayCount")) or 0, 1 if data.get("Played") else 0),
            last_played_at=parse_datetime(data.get("LastPlayedDate")),
            position_ticks=max(as_int(data.get("PlaybackPositionTicks")) or 0, 0),
            played_percentage=as_float(data.get("PlayedPercentage")),
            is_favorite=bool(data.get("IsFavorite")),
            series_id=as_text(item.get("SeriesId")),
            season_number=as_int(item.get("ParentIndexNumber")),
            episode_number=as_int(item.get("IndexNumber")),
            provider_ids=provider_ids(item),
        )
        if state.has_state:
            states[state.item_id] = state
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
