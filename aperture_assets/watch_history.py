"""`series_watch_history[user]`: the spec's sync-series-watch-history, one partition per user.

Each run re-reads the user's played, in-progress and favourite items in full. Incremental reads by
DatePlayed cannot see episodes being un-marked, and Jellyfin's minDateLastSavedForUser does not track
user data, so the read stays full (it is a handful of paged requests per user) while the write is
incremental: only rows that differ are touched, and a no-change sync changes zero rows.
"""

import time
from concurrent.futures import ThreadPoolExecutor

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from aperture_assets.catalog_rows import as_text, provider_ids
from aperture_assets.users import users_partitions
from aperture_assets.watch_rows import STATES, WATCH_FIELDS, EpisodeState, episode_states, is_under, series_state
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerClient, MediaServerResource
from aperture_resources.watch_store import (
    known_episode_ids,
    known_series_ids,
    match_by_provider,
    series_provider_ids,
    user_summary,
    write_user_history,
)


def read_user(client: MediaServerClient, user_id: str, exclude_root: str) -> tuple[dict[str, EpisodeState], list[dict]]:
    """Everything the server knows about one user's watching: (episode states, favourite series items)."""
    played = client.user_items(user_id, "Episode", WATCH_FIELDS, isPlayed=True, sortBy=["DatePlayed"])
    resume = client.resume_items(user_id, WATCH_FIELDS)
    favorite_episodes = client.user_items(user_id, "Episode", WATCH_FIELDS, isFavorite=True)
    favorite_series = [
        item for item in client.user_items(user_id, "Series", WATCH_FIELDS, isFavorite=True)
        if not is_under(item.get("Path"), exclude_root)
    ]
    return episode_states([*played, *resume, *favorite_episodes], exclude_root), favorite_series


def map_to_catalog(conn, client: MediaServerClient, states: dict[str, EpisodeState],
                   favorite_series: list[dict]) -> tuple[list[tuple], list[str], int]:
    """Catalog rows for the user's states: by item id, else by the show's provider ids + season/episode
    (a copy in another library or a regenerated id). Returns (rows, favourite series ids, unmatched)."""
    known = known_episode_ids(conn, list(states))
    unmatched = [s for s in states.values() if s.item_id not in known]
    series_ids = sorted({s.series_id for s in unmatched if s.series_id})
    show_ids = series_provider_ids(conn, series_ids)
    missing = [sid for sid in series_ids if sid not in show_ids]
    if missing:
        show_ids |= {str(item["Id"]): provider_ids(item) for item in client.items_by_id(missing, ["ProviderIds"])
                     if item.get("Id")}
    keys = [(i, *show_ids.get(s.series_id or "", (None, None, None)), s.season_number, s.episode_number)
            for i, s in enumerate(unmatched) if s.episode_number is not None]
    matched = match_by_provider(conn, keys)
    target = {s.item_id: s.item_id for s in states.values() if s.item_id in known}
    target |= {unmatched[i].item_id: episode_id for i, episode_id in matched.items()}

    rows: dict[str, tuple] = {}
    for state in states.values():
        episode_id = target.get(state.item_id)
        if episode_id is None:
            continue
        row = (episode_id, state.played, state.play_count, state.last_played_at, state.position_ticks,
               state.played_percentage, state.is_favorite)
        previous = rows.get(episode_id)  # two server copies mapped onto one episode: keep the most-watched
        if previous is None or (row[1], row[2], row[3] or 0) > (previous[1], previous[2], previous[3] or 0):
            rows[episode_id] = row

    fav_ids = [str(item["Id"]) for item in favorite_series if item.get("Id")]
    known_fav = known_series_ids(conn, fav_ids)
    fav_keys = [(i, *provider_ids(item), None, None) for i, item in enumerate(favorite_series)
                if as_text(str(item.get("Id") or "")) and str(item["Id"]) not in known_fav]
    favorites = sorted(known_fav | set(match_by_provider(conn, fav_keys).values()))
    return list(rows.values()), favorites, len(states) - len(target)


def sync_user(client: MediaServerClient, database: DatabaseResource, user_id: str, exclude_root: str) -> dict:
    started = time.perf_counter()
    states, favorite_series = read_user(client, user_id, exclude_root)  # a failed read raises before any write
    with database.connect() as conn:
        rows, favorites, unmatched = map_to_catalog(conn, client, states, favorite_series)
        changes = write_user_history(conn, user_id, rows, favorites, series_state)
        states_count, top = user_summary(conn, user_id)
    return {
        "user_id": user_id,
        "episodes_watched": sum(1 for r in rows if r[1]),
        "episodes_in_progress": sum(1 for r in rows if not r[1] and r[4] > 0),
        "unmatched_items": unmatched,
        "states": states_count,
        "top": top,
        "rows_changed": sum(changes.values()),
        "requests": client.requests_made,
        "seconds": round(time.perf_counter() - started, 3),
    }


@asset(
    deps=["series_catalog"],
    partitions_def=users_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="history",
    kinds={"postgres"},
    description="Per-user episode watch state and derived series progress (the spec's sync-series-watch-history).",
)
def series_watch_history(
    context: AssetExecutionContext, media_server: MediaServerResource, database: DatabaseResource
) -> MaterializeResult:
    started = time.perf_counter()
    user_ids = list(context.partition_keys)

    def one(user_id: str) -> dict:
        with media_server.client() as client:
            return sync_user(client, database, user_id, media_server.library_root)

    results, failures = [], {}
    with ThreadPoolExecutor(max(1, min(media_server.concurrency, len(user_ids)))) as pool:
        futures = {uid: pool.submit(one, uid) for uid in user_ids}
        for uid, future in futures.items():
            try:
                results.append(future.result())
            except Exception as exc:  # isolate users: the others' results are committed regardless
                failures[uid] = str(exc)
                context.log.error("watch history for user %s failed: %s", uid, exc)
    for result in results:
        context.add_asset_metadata(user_metadata(result), partition_key=result["user_id"])
    if failures:
        raise Failure(
            description=f"{len(failures)} of {len(user_ids)} users failed; the other {len(results)} were saved.",
            metadata={"failed_users": MetadataValue.json(failures)},
        )
    return MaterializeResult(metadata=run_metadata(results, time.perf_counter() - started))


def run_metadata(results: list[dict], duration: float) -> dict:
    """Totals over every user of the run (per-user figures are on each partition)."""
    return {
        "run_users": len(results),
        **{f"run_{key}": sum(r[key] for r in results)
           for key in ("episodes_watched", "episodes_in_progress", "unmatched_items", "rows_changed", "requests")},
        "run_duration_seconds": round(duration, 3),
    }


def user_metadata(result: dict) -> dict:
    """One user's figures: episodes, series per state, duration and their top series by progress."""
    lines = ["| Series | State | Watched | Progress | Last watched |", "|---|---|---|---|---|"]
    for name, state, watched, available, percent, last in result["top"]:
        safe = str(name).replace("|", "\\|")
        when = f"{last:%Y-%m-%d}" if last else ""
        lines.append(f"| {safe} | {state} | {watched}/{available} | {percent:.0f}% | {when} |")
    return {
        "episodes_watched": result["episodes_watched"],
        "episodes_in_progress": result["episodes_in_progress"],
        "unmatched_items": result["unmatched_items"],
        "rows_changed": result["rows_changed"],
        "http_requests": result["requests"],
        "duration_seconds": result["seconds"],
        **{f"series_{state}": result["states"].get(state, 0) for state in STATES},
        "top_series": MetadataValue.md("\n".join(lines)),
    }
