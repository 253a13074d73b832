"""`series_watch_history[user]`: what each user watched, one partition per user.

The write is diff-based (only rows that differ are touched; a no-change sync changes zero rows) and the
read is incremental where that is provably exact, else full. Resume positions and favourites (small
lists) are always read in full; the played episodes, the big list, are read like this:

- Stored per user: the set S of server items that were played at the last sync, by SERVER item id with
  their user data (table user_played_items; several server items may map onto one catalog episode, so
  episode_watch_state cannot serve), and the watermark, S's newest LastPlayedDate.
- Incremental read: played episodes sorted by DatePlayed descending, page by page, until a page reaches
  an item played before the watermark. That window W holds every item that entered the played set or
  was played again since the last sync (playing moves LastPlayedDate to now; Jellyfin's
  minDateLastSavedForUser does not track user data, so it is not used). The first page also carries
  the server's count of played episodes. An item leaving the played set (un-marked, deleted, hidden) is
  the one change W cannot show, and it is the only one that makes the count smaller than |S | W|, which
  never shrinks: so if count == |S | W|, S | W (with W's fresh user data) is exactly the played set and
  is applied; otherwise the played list is re-read in full.
- Always full instead: no stored state, another picks root, the catalog removed episodes since the last
  sync (item ids may have been regenerated), a server without TotalRecordCount, pages that disagree on
  it, and once a day (FULL_READ_EVERY), which bounds the one case the count cannot see: a back-dated
  mark (an imported play dated before the watermark) in the same interval as an un-mark.

A read equal to the last writing sync's (the digest of the played set, resume, favourite and disliked items,
leaving out the picks root's own items), under the same catalog and picks root, would change no watch row: its
remap and writes are skipped, only the stored played set is brought up to date, and the user costs one database
connection and four requests.

Both paths end in the same played set and go through the same merge (`watch_states`), catalog mapping
and write, which tests/test_watch_history.py checks against a fresh full read over random changes. Items
in our own picks libraries are kept in S (the server counts them) but never become watch rows. Every
HTTP read happens before the first write and the writes are one transaction per user, so a failed read
(HTTP error, malformed page) changes nothing. Metadata records the path each user took ("read") and its
requests.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from aperture_assets.logic.catalog_rows import as_text, provider_ids
from aperture_assets.logic.watch_rows import (
    STATES,
    WATCH_FIELDS,
    EpisodeState,
    is_under,
    merge_window,
    played_before,
    played_items,
    played_row,
    read_digest,
    series_state,
    stored_played,
    watch_states,
    watermark,
)
from aperture_assets.wiring import progress
from aperture_assets.wiring.automation import NEW_USER
from aperture_assets.wiring.partitions import run_users, users_partitions
from aperture_assets.wiring.stage import stage_body, transient
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerClient, MediaServerResource
from aperture_resources.watch_store import (
    CatalogVersion,
    WatchSync,
    catalog_version,
    known_episode_ids,
    known_series_ids,
    load_played_items,
    load_watch_sync,
    match_by_provider,
    replace_dislikes,
    save_watch_sync,
    series_provider_ids,
    stored_episode_counts,
    user_summary,
    write_played_items,
    write_user_history,
)

FULL_READ_EVERY = timedelta(hours=24)
WINDOW_FIRST_PAGE = 50  # most syncs find a handful of new plays; later window pages use the client's page size
PLAYED = {"isPlayed": True, "sortBy": ["DatePlayed"]}


@dataclass
class UserRead:
    """What the server knows about one user's watching, and how the played list was read."""

    played: dict[str, EpisodeState]   # the played set, by server item id
    changed: dict[str, EpisodeState]  # played items to store: W (incremental) or the whole set (full)
    others: list[dict]                # resume and favourite episode items
    favorite_series: list[dict]
    disliked_series: list[dict]       # series the user marked "dislike"
    read: str                         # "incremental" | "full"
    reason: str                       # why the read was full ("" if incremental)


def full_read_reason(previous: WatchSync | None, exclude_root: str, now: datetime,
                     catalog: CatalogVersion) -> str | None:
    """Why this sync must read the played list in full before trying, or None to try the window."""
    if previous is None:
        return "no previous sync"
    if previous.exclude_root != exclude_root:
        return "the picks root changed"
    if now - previous.full_read_at >= FULL_READ_EVERY:
        return "periodic full read"
    if previous.catalog_removals != catalog.removals:
        return "the catalog removed episodes"
    return None


@dataclass
class Window:
    """Played episodes newest first, read down to a page holding one played before the watermark."""

    items: list[dict]
    total: int | None   # the server's count of played episodes (None: it sent none)
    consistent: bool    # every page reported the same count (the list did not change during the read)
    reached_end: bool   # the read covered the whole list: it is a full read


def read_window(client: MediaServerClient, user_id: str, mark: datetime | None) -> Window:
    items: list[dict] = []
    totals: list[int | None] = []
    start, size = 0, min(WINDOW_FIRST_PAGE, client.page_size)
    while True:
        page, total = client.user_items_page(user_id, "Episode", WATCH_FIELDS, start, size, **PLAYED,
                                             sortOrder=["Descending"])
        items += page
        totals.append(total)
        start += len(page)
        consistent = all(t == total for t in totals)
        if len(page) < size or (total is not None and start >= total):
            return Window(items, total, consistent, reached_end=True)
        if mark is not None and any(played_before(item, mark) for item in page):
            return Window(items, total, consistent, reached_end=False)
        size = client.page_size


def read_played(client: MediaServerClient, user_id: str, exclude_root: str, stored: dict[str, EpisodeState],
                reason: str | None) -> tuple[dict[str, EpisodeState], dict[str, EpisodeState], str, str]:
    """(played set, items to store, "incremental" | "full", why full)."""
    if reason is None:
        window = read_window(client, user_id, watermark(stored))
        seen = played_items(window.items, exclude_root)
        known = len({**stored, **seen})
        # pages that disagree on the count, or an item repeated by an unstable order (so another was skipped)
        if not window.consistent or len(seen) != len(window.items):
            reason = "the played list changed during the read"
        elif window.reached_end:
            if window.total is None or len(seen) == window.total:
                return seen, seen, "full", "the window reached the oldest play"
            reason = f"the whole list read, {len(seen)} items but the server counts {window.total}"
        elif window.total is None:
            reason = "the server sent no TotalRecordCount"
        elif (merged := merge_window(stored, seen, window.total)) is not None:
            return merged, seen, "incremental", ""
        else:
            reason = f"{window.total} played on the server, {known} known: an item left the played set"
    played = played_items(client.user_items(user_id, "Episode", WATCH_FIELDS, **PLAYED), exclude_root)
    return played, played, "full", reason


def read_user(client: MediaServerClient, user_id: str, exclude_root: str, stored: dict[str, EpisodeState],
              reason: str | None) -> UserRead:
    """Everything the server knows about one user's watching; the four reads run at once."""
    with ThreadPoolExecutor(4) as pool:
        played_f = pool.submit(read_played, client, user_id, exclude_root, stored, reason)
        resume_f = pool.submit(client.resume_items, user_id, WATCH_FIELDS)
        favorites_f = pool.submit(client.user_items, user_id, ["Episode", "Series"], WATCH_FIELDS, isFavorite=True)
        disliked_f = pool.submit(client.disliked_series, user_id, WATCH_FIELDS)
        played, changed, read, why = played_f.result()
        resume, favorites, disliked = resume_f.result(), favorites_f.result(), disliked_f.result()
    favorite_episodes = [item for item in favorites if item.get("Type") != "Series"]
    favorite_series = [item for item in favorites
                       if item.get("Type") == "Series" and not is_under(item.get("Path"), exclude_root)]
    disliked_series = [item for item in disliked if item.get("Type") == "Series"
                       and (item.get("UserData") or {}).get("Likes") is False
                       and not is_under(item.get("Path"), exclude_root)]
    return UserRead(played, changed, [*resume, *favorite_episodes], favorite_series, disliked_series, read, why)


def catalog_series(conn, items: list[dict]) -> list[str]:
    """Catalog series ids of series items: by id, else by provider ids (a copy in another library or a
    regenerated id)."""
    ids = [str(item["Id"]) for item in items if item.get("Id")]
    known = known_series_ids(conn, ids)
    keys = [(i, *provider_ids(item), None, None, as_text(item.get("Path")))
            for i, item in enumerate(items)
            if as_text(str(item.get("Id") or "")) and str(item["Id"]) not in known]
    return sorted(known | set(match_by_provider(conn, keys).values()))


def map_to_catalog(conn, client: MediaServerClient, states: dict[str, EpisodeState],
                   favorite_series: list[dict]) -> tuple[list[tuple], list[str], int, bool]:
    """Catalog rows for the user's states: by item id, else by the show's provider ids + season/episode
    (a copy in another library or a regenerated id). Returns (rows, favourite series ids, unmatched, whether
    every state matched by item id: else the mapping also depends on the server's provider ids and on paths,
    which a stored played item lacks)."""
    known = known_episode_ids(conn, list(states))
    unmatched = [s for s in states.values() if s.item_id not in known]
    series_ids = sorted({s.series_id for s in unmatched if s.series_id})
    show_ids = {sid: (s.tvdb_id, s.tmdb_id, s.imdb_id) for sid, s in series_provider_ids(conn, series_ids).items()}
    missing = [sid for sid in series_ids if sid not in show_ids]
    if missing:
        show_ids |= {str(item["Id"]): provider_ids(item) for item in client.items_by_id(missing, ["ProviderIds"])
                     if item.get("Id")}
    keys = [(i, *show_ids.get(s.series_id or "", (None, None, None)), s.season_number, s.episode_number, s.path)
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

    return list(rows.values()), catalog_series(conn, favorite_series), len(states) - len(target), not unmatched


def sync_user(client: MediaServerClient, database: DatabaseResource, user_id: str, exclude_root: str,
              *, full: bool = False, catalog: CatalogVersion | None = None) -> dict:
    """Read one user's watching (incrementally where provably exact, unless `full`) and write it.
    `catalog`: the catalog's fingerprints (watch_store.catalog_version), if the caller read them for a whole
    run before any user's read started.

    A read whose digest (watch_rows.read_digest) equals the last writing sync's, under the same catalog and picks
    root, would change no row: the remap and the writes are skipped (a full read still records its time). The
    stored figures for the metadata are read up front, in the same transaction as the sync state.

    One connection serves the whole user (connecting costs more than this user's queries): the reads' transaction
    is committed before the HTTP read, so no transaction stays open while the server answers, and the writes are
    one transaction after it."""
    started = time.perf_counter()
    with database.connect() as conn:
        catalog = catalog or catalog_version(conn)
        previous, read_started = load_watch_sync(conn, user_id)
        reason = "full read requested" if full else full_read_reason(previous, exclude_root, read_started, catalog)
        stored = {} if reason else {s.item_id: s for s in map(stored_played, load_played_items(conn, user_id))}
        standing = None
        if (previous is not None and previous.read_digest is not None and previous.exclude_root == exclude_root
                and previous.catalog_version == catalog.version):
            standing = stored_episode_counts(conn, user_id), user_summary(conn, user_id)
        conn.commit()  # no transaction open while the server answers
        user = read_user(client, user_id, exclude_root, stored, reason)  # a failed read raises before any write
        digest = read_digest(user.played, user.others, user.favorite_series, user.disliked_series, exclude_root)
        if standing is not None and digest == previous.read_digest:
            # the watch rows stand; the played set is still stored exactly (it holds the picks root's items,
            # which the digest leaves out), so the next incremental read's count check holds
            played_changed = write_played_items(conn, user_id, [played_row(s) for s in user.changed.values()],
                                                replace=user.read == "full")
            if user.read == "full":  # the next periodic full read counts from this one
                save_watch_sync(conn, user_id, exclude_root, user.read, read_started, catalog, digest,
                                previous.unmatched_items)
            (watched, in_progress), (states_count, top) = standing
            return user_result(user_id, user, watched, in_progress, previous.unmatched_items, states_count, top,
                               played_changed, client.requests_made, started, unchanged=True)
        states = watch_states(user.played, user.others, exclude_root)
        rows, favorites, unmatched, by_id = map_to_catalog(conn, client, states, user.favorite_series)
        # progress was last derived from the catalog the sync row names; if it and the rows are unchanged, it stands
        new_catalog = previous is None or previous.catalog_version != catalog.version
        progress_current = user.read == "incremental" and not new_catalog
        changes = write_user_history(conn, user_id, rows, favorites, series_state, progress_current)
        changes["dislikes_changed"] = replace_dislikes(conn, user_id, catalog_series(conn, user.disliked_series))
        changes["played_items_changed"] = write_played_items(
            conn, user_id, [played_row(s) for s in user.changed.values()], replace=user.read == "full")
        digest = digest if by_id else None  # never skip a read whose mapping needs more than the digest holds
        if (user.read == "full" or new_catalog or any(changes.values()) or previous.read_digest != digest
                or previous.unmatched_items != unmatched):  # else nothing is written at all
            save_watch_sync(conn, user_id, exclude_root, user.read, read_started, catalog, digest, unmatched)
        states_count, top = user_summary(conn, user_id)
    return user_result(user_id, user, sum(1 for r in rows if r[1]), sum(1 for r in rows if not r[1] and r[4] > 0),
                       unmatched, states_count, top, sum(changes.values()), client.requests_made, started)


def user_result(user_id: str, user: UserRead, watched: int, in_progress: int, unmatched: int,
                states: dict[str, int], top: list, rows_changed: int, requests: int, started: float,
                unchanged: bool = False) -> dict:
    return {
        "user_id": user_id,
        "read": user.read,
        "read_reason": user.reason,
        "read_unchanged": unchanged,
        "episodes_watched": watched,
        "episodes_in_progress": in_progress,
        "unmatched_items": unmatched,
        "states": states,
        "top": top,
        "rows_changed": rows_changed,
        "requests": requests,
        "seconds": round(time.perf_counter() - started, 3),
    }


@asset(
    automation_condition=NEW_USER,
    pool="media_server",
    deps=["series_catalog"],
    partitions_def=users_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="history",
    kinds={"postgres"},
    description="Per-user episode watch state, favourites and dislikes, and derived series progress.",
)
@stage_body
def series_watch_history(
    context: AssetExecutionContext, media_server: MediaServerResource, database: DatabaseResource
) -> MaterializeResult:
    started = time.perf_counter()
    users = run_users(database, list(context.partition_keys))
    user_ids = users.ids
    with database.connect() as conn:
        catalog = catalog_version(conn)  # once for the run, before any user's read starts

    def one(user_id: str) -> dict:
        with media_server.client() as client:
            return sync_user(client, database, user_id, media_server.picks_root, catalog=catalog)

    results, failures, errors = [], {}, []
    with ThreadPoolExecutor(max(1, min(media_server.concurrency, len(user_ids)))) as pool:
        futures = {uid: pool.submit(one, uid) for uid in user_ids}
        for done, (uid, future) in enumerate(futures.items(), start=1):
            try:
                results.append(future.result())
                progress.advance("series_watch_history", "users", done, len(user_ids))
            except Exception as exc:  # isolate users: the others' results are committed regardless
                failures[uid] = str(exc)
                errors.append(exc)
                context.log.error("watch history for user %s failed: %s", uid, exc)
    for result in results:
        context.add_asset_metadata(user_metadata(result), partition_key=users.key(result["user_id"]))
    if failures:
        raise Failure(
            description=f"{len(failures)} of {len(user_ids)} users failed; the other {len(results)} were saved.",
            metadata={"failed_users": MetadataValue.json(failures)},
            allow_retries=any(transient(exc) for exc in errors),  # a retry only helps past a passing fault
        )
    return MaterializeResult(metadata=run_metadata(results, time.perf_counter() - started))


def run_metadata(results: list[dict], duration: float) -> dict:
    """Totals over every user of the run (per-user figures are on each partition)."""
    return {
        "run_users": len(results),
        **{f"run_{key}": sum(r[key] for r in results)
           for key in ("episodes_watched", "episodes_in_progress", "unmatched_items", "rows_changed", "requests")},
        "run_incremental_reads": sum(1 for r in results if r["read"] == "incremental"),
        "run_users_unchanged": sum(1 for r in results if not r["rows_changed"]),
        "run_reads_unchanged": sum(1 for r in results if r["read_unchanged"]),
        "run_duration_seconds": round(duration, 3),
    }


def user_metadata(result: dict) -> dict:
    """One user's figures: episodes, series per state, duration and their top series by progress."""
    lines = ["| Series | State | Watched | Progress | Last watched |", "|---|---|---|---|---|"]
    for s in result["top"]:
        safe = str(s.name).replace("|", "\\|")
        when = f"{s.last_watched_at:%Y-%m-%d}" if s.last_watched_at else ""
        lines.append(f"| {safe} | {s.state} | {s.episodes_watched}/{s.episodes_available} | {s.percent:.0f}% "
                     f"| {when} |")
    return {
        "episodes_watched": result["episodes_watched"],
        "episodes_in_progress": result["episodes_in_progress"],
        "unmatched_items": result["unmatched_items"],
        "read": result["read"],
        "read_unchanged": result["read_unchanged"],
        **({"read_reason": result["read_reason"]} if result["read_reason"] else {}),
        "rows_changed": result["rows_changed"],
        "http_requests": result["requests"],
        "duration_seconds": result["seconds"],
        **{f"series_{state}": result["states"].get(state, 0) for state in STATES},
        "top_series": MetadataValue.md("\n".join(lines)),
    }
