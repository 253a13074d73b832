"""`series_library[user]`: each user's picks library on disk and on the server, one partition per user.

Per run: every user's folder is written from their latest picks (diff-based: unchanged files are not
touched), each user's library is found or created once, every user's policy is made to hide other users'
picks libraries (before any scan, so new items are never visible to the wrong user), only libraries whose
files changed are rescanned (once each), and the Season 00 sorting placeholders are marked played for
their user. A partition whose user is no longer enabled has its library and folder removed.

Two files beside the user's library folder carry work over: `.refresh-pending` remembers a change until its
rescan went through (a run that dies between the write and the scan still gets the scan next time), and
`.placeholders-pending` lists, by the path the server will report, every new or changed sorting placeholder
not yet confirmed played for its user (see `PendingPlaceholders`). Each placeholder is confirmed by its path,
never by a count: right after a rescan the server still lists the previous scan's placeholders, already
played. Real servers scan asynchronously, so a run waits a bounded time (PLACEHOLDER_WAIT_SECONDS) and leaves
the rest to the `library_placeholders` sensor or the next run. With neither file, a no-change run sends no
request for that user at all.

No-change runs skip planning: the writer keeps a manifest beside each folder (the digest of the plan's inputs
and an lstat record of the tree it wrote; see writer.py). When the digest of this run's picks and options
matches and the tree on disk is still exactly as recorded, the folder is left alone without planning or
reading it (`fast_path: true` in the metadata); otherwise it is planned and diffed as usual, which also
repairs anything edited, deleted or added by hand.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from aperture_assets.logic.watch_rows import enabled_user_ids, users_to_drop
from aperture_assets.wiring import progress
from aperture_assets.wiring.automation import FOLLOW_UPSTREAM
from aperture_assets.wiring.partitions import RunUsers, read_users, run_users, users_partitions
from aperture_assets.wiring.stage import stage_body
from aperture_resources.access_store import (
    PicksLibrary,
    all_folders_users,
    forget_picks_libraries,
    picks_libraries,
    record_access,
    save_picks_libraries,
)
from aperture_resources.database import DatabaseResource
from aperture_resources.library import LibraryOptions, PickedSeries, WriteStats, plan_user_tree, write_user_tree
from aperture_resources.library.cleanup import REFRESH_MARKER, remove_user_library
from aperture_resources.library.resource import LibraryResource, short_id
from aperture_resources.library.server_sync import (
    PendingPlaceholders,
    check_listing,
    enforce_privacy,
    ensure_libraries,
    mark_placeholders,
    oldest_age,
    stale_libraries,
    unique_names,
)
from aperture_resources.library.tree import plan_digest
from aperture_resources.library.writer import ensure_user_dir, unchanged_tree
from aperture_resources.library_store import picks_by_user
from aperture_resources.media_server import MediaServerClient
from aperture_resources.media_server.access import ServerAccess, read_access, refusal
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.watch_store import known_user_ids, missing_reads

# After a rescan, placeholders are listed up to PLACEHOLDER_POLLS times, PLACEHOLDER_POLL_SECONDS apart and at
# most PLACEHOLDER_WAIT_SECONDS in all per library (servers scan asynchronously); the rest is left pending.
PLACEHOLDER_POLLS = 4
PLACEHOLDER_POLL_SECONDS = 1.0
PLACEHOLDER_WAIT_SECONDS = 3.0
# Users' folders are written side by side: creating a file costs a metadata round trip to the disk (~0.2 ms
# on the benchmark's VM disk, more on a NAS) that threads partly overlap (about 1.3x there).
DISK_WORKERS = 4
# Users whose picks (with every episode) are read and written together: memory grows with this, not with the users.
PICKS_BATCH = 8


@dataclass
class UserLibrary:
    user_id: str
    library_name: str
    folder: str
    local_path: Path
    server_path: str
    picks: list[str]  # "rank. title (year)" lines: the picks themselves (with episodes) are dropped once written
    stats: WriteStats
    skipped: dict[str, int]
    seconds: float
    fast_path: bool = False

    def marker(self, name: str) -> Path:
        return self.local_path.parent / name

    def placeholders(self) -> PendingPlaceholders:
        return PendingPlaceholders(self.local_path, self.server_path)


def write_folder(library: LibraryResource, options: LibraryOptions, user_id: str, name: str, folder: str,
                 picks: list[PickedSeries]) -> UserLibrary:
    started = time.perf_counter()
    local = library.local_path(folder)
    digest = plan_digest(picks, options)
    same = unchanged_tree(local, library.local_root(), digest)
    if same is not None:
        stats, skipped = WriteStats(written=0, unchanged=same.entries, removed=0, changed_folders=()), same.info
    else:
        plan = plan_user_tree(picks, options)
        stats = write_user_tree(local, plan.entries, library.local_root(), inputs=digest, info=plan.skipped)
        skipped = plan.skipped
        if stats.written or stats.removed:
            (local.parent / REFRESH_MARKER).touch()
            PendingPlaceholders(local, library.server_path(folder)).record_write(plan.entries, stats.changed_folders)
    titles = [f"{p.rank}. {p.title}" + (f" ({p.year})" if p.year else "") for p in picks]
    return UserLibrary(user_id, library.library_name(name), folder, local, library.server_path(folder), titles, stats,
                       dict(skipped), time.perf_counter() - started, fast_path=same is not None)


def write_batch(library: LibraryResource, database: DatabaseResource, options: LibraryOptions, access: ServerAccess,
                batch: list[tuple[str, str, str]]) -> tuple[dict[str, UserLibrary], dict[str, list[str]]]:
    """Write the folders of a batch of (user id, name, folder): their picks (with every episode) are read for the
    batch only, so memory is bounded by the batch, not by the number of users. Returns (folders written by user
    id, titles left out by user id)."""
    with database.connect() as conn:
        picks = picks_by_user(conn, [uid for uid, _, _ in batch])
    # The picks were made under the policies of their run; a link must obey the policy of now.
    picks, refused = permitted_picks(access, picks)
    written = {uid: write_folder(library, options, uid, name, folder, picks.pop(uid)) for uid, name, folder in batch}
    return written, refused


def finish_on_server(client: MediaServerClient, user: UserLibrary, library_id: str, created: bool) -> dict:
    """Rescan the library if its files changed (or it is new), then mark the user's pending placeholders played,
    each confirmed by its path; after a rescan, wait for it a bounded time, then leave the rest pending."""
    started = time.perf_counter()
    store = user.placeholders()
    refresh = created or user.marker(REFRESH_MARKER).exists()
    if created:  # a new library's items are new: none is played yet, whatever the tree on disk
        on_disk = store.on_disk()
        store.update(add=on_disk, keep=on_disk)
    if refresh:
        client.refresh_item(library_id)
        user.marker(REFRESH_MARKER).unlink(missing_ok=True)
    pending = store.load()
    marked = not_found = 0
    waited = 0.0
    if pending:
        sync = mark_placeholders(client, user.user_id, library_id, pending,
                                 polls=PLACEHOLDER_POLLS if refresh else 1, poll_seconds=PLACEHOLDER_POLL_SECONDS,
                                 budget_seconds=PLACEHOLDER_WAIT_SECONDS if refresh else 0.0)
        pending = store.update(remove=sync.confirmed)
        marked, not_found, waited = sync.marked, sync.not_found, sync.waited
    return {"refreshed": refresh, "placeholders_marked": marked, "placeholders_not_found": not_found,
            "placeholders_pending": len(pending), "placeholders_oldest_pending_seconds": round(oldest_age(pending), 1),
            "scan_wait_seconds": round(waited, 3), "seconds": time.perf_counter() - started}


@asset(
    automation_condition=FOLLOW_UPSTREAM,
    pool="media_server",
    deps=["series_recommendations"],
    partitions_def=users_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="libraries",
    kinds={"jellyfin", "emby"},
    description="Per-user 'AI Picks - TV' library: folder tree on disk, a server library visible only to its "
    "user, rescanned when it changed, placeholders marked played.",
)
@stage_body
def series_library(
    context: AssetExecutionContext,
    library: LibraryResource,
    database: DatabaseResource,
    pipeline: PipelineConfig,
) -> MaterializeResult:
    started = time.perf_counter()
    with library.media_server.client() as client:
        users = read_users(client)  # an empty or failed read raises: nothing is removed on it
        enabled = set(enabled_user_ids(users, pipeline.wanted_users()))
        names = {str(u["Id"]): str(u.get("Name") or "") for u in users}
        run = run_users(database, list(context.partition_keys))
        active = [uid for uid in run.ids if uid in enabled]
        with database.connect() as conn:
            candidates = set(run.ids) | known_user_ids(conn)
            missing = missing_reads(conn, sorted(candidates))
            recorded = picks_libraries(conn)
            see_all = all_folders_users(conn)
        drop, held = users_to_drop(candidates, names, enabled, missing, pipeline.user_removal_reads)
        folders = client.libraries()
        check_listing(client, folders, [lib.library_id for lib in recorded.values()])
        options = library.options(client, folders)  # a wrong setting stops here, before any write
        access = read_access(client, users, folders)
        removed = remove_libraries(context, run, client, library, database, drop, folders)
        for user_id in sorted(held & set(run.ids)):
            context.log.warning("user %s is missing from the server's user list (%d of %d reads): their library is "
                                "kept and not rebuilt", user_id, missing.get(user_id, 0), pipeline.user_removal_reads)
        if removed:
            folders = client.libraries()
        # Privacy first: before any picks library is created or rescanned, every user who could see all
        # libraries gets an explicit list and nobody sees another user's picks; a refusal stops the run here.
        privacy = enforce_privacy(client, users, folders, library.owner_of_library, short_id, see_all)
        with database.connect() as conn:
            record_access(conn, privacy.had_all_folders)
        privacy.raise_if_failed()
        see_all |= {uid for uid, everything in privacy.had_all_folders.items() if everything}
        library.users_dir().mkdir(parents=True, exist_ok=True, mode=0o755)  # the server must traverse it
        # The disk and the server work side by side: while the folders are written (bound by the disk's
        # latency per file), the libraries are found or created at them; each user's rescan and placeholders
        # then follow as soon as that user's folder is written. The folders exist (empty if new) before any
        # library is created at them.
        folders_of = {uid: library.user_folder(uid, names[uid]) for uid in active}
        for uid in active:
            ensure_user_dir(library.local_path(folders_of[uid]), library.local_root())
        with ThreadPoolExecutor(DISK_WORKERS) as disk, ThreadPoolExecutor(client.concurrency) as net:
            batches = [[(uid, names[uid], folders_of[uid]) for uid in active[i:i + PICKS_BATCH]]
                       for i in range(0, len(active), PICKS_BATCH)]
            writes = {}
            for batch in batches:
                future = disk.submit(write_batch, library, database, options, access, batch)
                writes |= {uid: future for uid, _, _ in batch}
            wanted = {uid: (library.library_name(names[uid]), library.server_path(folders_of[uid])) for uid in active}
            ids = {uid: lib.library_id for uid, lib in recorded.items() if uid in wanted}
            stale = stale_libraries(folders, wanted, ids, short_id)
            for uid, old in stale.items():  # a changed root or name: the old library goes before the new one
                client.delete_library(old)
                context.log.info("user %s: removed library %r at %s (the library root or name changed)", uid,
                                 old.get("Name"), old.get("Locations"))
                ids.pop(uid, None)
            if stale:
                folders = client.libraries()
            wanted = unique_names(wanted, folders, short_id)
            folders, found, created = ensure_libraries(client, folders, wanted, ids)
            with database.connect() as conn:
                save_picks_libraries(conn, [PicksLibrary(uid, str(found[uid]["ItemId"]), str(found[uid].get("Name")),
                                                         wanted[uid][1]) for uid in active])
            if created:  # the new libraries join their owners' lists (nobody else's: every list is explicit)
                privacy = enforce_privacy(client, users, folders, library.owner_of_library, short_id, see_all)
                privacy.raise_if_failed()

            def finish(uid: str) -> tuple[UserLibrary, dict]:
                user = writes[uid].result()[0][uid]
                return user, finish_on_server(client, user, str(found[uid]["ItemId"]), uid in created)

            written, finished, refused = {}, {}, {}
            for user, server in net.map(finish, active):  # independent libraries, a few at a time
                written[user.user_id], finished[user.user_id] = user, server
                if user.user_id in (left_out := writes[user.user_id].result()[1]):
                    refused[user.user_id] = left_out[user.user_id]
                    context.log.warning("user %s may no longer open %s (library access or parental controls "
                                        "changed since their picks were made): left out of their library",
                                        user.user_id, left_out[user.user_id])
                progress.advance("series_library", "users", len(written), len(active))
                context.add_asset_metadata(user_metadata(user, found[user.user_id], user.user_id in created, server),
                                           partition_key=run.key(user.user_id))
    # Run totals ("run_" keys: every partition's materialization also carries these).
    return MaterializeResult(metadata={
        "run_users": len(written),
        "run_users_removed": len(removed),
        "run_users_held": MetadataValue.json(sorted(held)),
        "run_files_written": sum(u.stats.written for u in written.values()),
        "run_files_unchanged": sum(u.stats.unchanged for u in written.values()),
        "run_files_removed": sum(u.stats.removed for u in written.values()),
        "run_libraries_created": len(created),
        "run_libraries_moved": len(stale),
        "run_policies_updated": len(privacy.updated),
        "run_mode": options.mode,
        "run_picks_refused_now": sum(len(titles) for titles in refused.values()),
        "run_placeholders_marked": sum(f["placeholders_marked"] for f in finished.values()),
        "run_placeholders_pending": sum(f["placeholders_pending"] for f in finished.values()),
        "run_placeholders_oldest_pending_seconds": max(
            (f["placeholders_oldest_pending_seconds"] for f in finished.values()), default=0.0),
        "run_users_with_pending_placeholders": MetadataValue.json(
            sorted(uid for uid, f in finished.items() if f["placeholders_pending"])),
        # Summed over users: their libraries wait side by side, so the run's wall time grows by less.
        "run_scan_wait_seconds": round(sum(f["scan_wait_seconds"] for f in finished.values()), 3),
        "run_duration_seconds": round(time.perf_counter() - started, 3),
    })


def permitted_picks(access: ServerAccess, picks: dict[str, list[PickedSeries]]) -> \
        tuple[dict[str, list[PickedSeries]], dict[str, list[str]]]:
    """Each user's picks they may open under their current policy, and the titles left out."""
    kept: dict[str, list[PickedSeries]] = {}
    refused: dict[str, list[str]] = {}
    for user_id, user_picks in picks.items():
        rules = access.of(user_id)
        kept[user_id] = [p for p in user_picks if refusal(rules, access.scale, access.copy(
            p.series_id, p.library_id, p.path, p.official_rating, p.tags)) is None]
        left_out = [p.title for p in user_picks if p not in kept[user_id]]
        if left_out:
            refused[user_id] = left_out
    return kept, refused


def remove_libraries(context: AssetExecutionContext, run: RunUsers, client: MediaServerClient,
                     library: LibraryResource, database: DatabaseResource, user_ids: set[str], folders: list[dict]
                     ) -> list[str]:
    """Remove the picks library and folder of each user who is disabled, left out, or gone for good; returns the
    user ids whose library or folder existed."""
    removed = []
    for user_id in sorted(user_ids):
        removal = remove_user_library(client, library, user_id, folders)
        if not (removal.libraries or removal.folders):
            continue
        removed.append(user_id)
        context.log.info("user %s is not enabled: removed %s", user_id, removal)
        if user_id in run:
            context.add_asset_metadata({"removed_libraries": removal.libraries, "removed_folders": removal.folders,
                                        "files_removed": removal.entries}, partition_key=run.key(user_id))
    with database.connect() as conn:
        forget_picks_libraries(conn, removed)
    return removed


def user_metadata(user: UserLibrary, folder: dict, created: bool, server: dict) -> dict:
    picks = "\n".join(user.picks)
    return {
        "files_written": user.stats.written,
        "files_unchanged": user.stats.unchanged,
        "files_removed": user.stats.removed,
        "changed_series_folders": len(user.stats.changed_folders),
        "fast_path": user.fast_path,
        "episodes_skipped": MetadataValue.json(user.skipped),
        "library_id": str(folder["ItemId"]),
        "library_name": str(folder.get("Name")),
        "library_created": created,
        "refreshed": server["refreshed"],
        "placeholders_marked": server["placeholders_marked"],
        "placeholders_not_found": server["placeholders_not_found"],
        "placeholders_pending": server["placeholders_pending"],
        "placeholders_oldest_pending_seconds": server["placeholders_oldest_pending_seconds"],
        "scan_wait_seconds": server["scan_wait_seconds"],
        "folder": MetadataValue.path(str(user.local_path)),
        "picks": MetadataValue.md(picks or "_no picks yet_"),
        "duration_seconds": round(user.seconds + server["seconds"], 3),
    }
