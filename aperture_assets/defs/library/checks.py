"""The libraries' data-quality checks: the folders on disk match the latest picks, and no sorting placeholder
waits long to be confirmed played."""

import time
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)
from lxml import etree

from aperture_assets.defs.library.assets import permitted_picks
from aperture_assets.wiring.partitions import read_users, run_users, users_partitions
from aperture_resources.database import DatabaseResource
from aperture_resources.library.naming import series_folder_names
from aperture_resources.library.resource import LibraryResource, owner_of
from aperture_resources.library.server_sync import PendingPlaceholders, oldest_age
from aperture_resources.library_store import picks_by_user
from aperture_resources.media_server.access import read_access

PLACEHOLDER_MAX_PENDING_SECONDS = 24 * 3600  # a placeholder not confirmed played within a day: warn


def folders_in_rank_order(series_dir: Path) -> list[str]:
    """Series folders on disk ordered by their tvshow.nfo sort title (the rank prefix)."""
    if not series_dir.is_dir():
        return []
    titled = []
    for path in series_dir.iterdir():
        if path.is_dir() and not path.name.startswith("."):
            nfo = path / "tvshow.nfo"
            titled.append((etree.parse(str(nfo)).findtext("sorttitle") if nfo.is_file() else "", path.name))
    return [name for _, name in sorted(titled)]


@asset_check(asset="series_library", description="Every enabled user's folder holds exactly their latest picks "
             "that they may open now, in rank order by sort title.")
def library_matches_recommendations(context: AssetCheckExecutionContext, library: LibraryResource,
                                    database: DatabaseResource) -> AssetCheckResult:
    user_ids = run_users(database, context.instance.get_dynamic_partitions(users_partitions.name)).ids
    with database.connect() as conn:
        picks = picks_by_user(conn, user_ids, episodes_too=False)  # folder names need the series, not episodes
    # as the library stage links them: a pick the user's policy refuses since it was made is left out, not missing
    with library.media_server.client() as client:
        picks, refused = permitted_picks(read_access(client, read_users(client), client.libraries()), picks)
    mismatches = {}
    for user_id in user_ids:
        names = series_folder_names(picks[user_id])
        expected = [names[p.series_id] for p in sorted(picks[user_id], key=lambda p: p.rank)]
        actual = folders_in_rank_order(library.local_path(library.user_folder(user_id, "")))
        if actual != expected:
            mismatches[user_id] = {"expected": expected, "on_disk": actual}
    return AssetCheckResult(passed=not mismatches, metadata={
        "users_checked": len(user_ids), "users_mismatched": len(mismatches),
        "mismatches": MetadataValue.json(mismatches), "picks_refused_now": MetadataValue.json(refused)})


@asset_check(asset="series_library", description="No sorting placeholder has waited more than a day to be "
             "confirmed played for its user (a server that never scanned the library, or refuses the marks).")
def placeholders_confirmed_within_a_day(library: LibraryResource) -> AssetCheckResult:
    now = time.time()
    users_dir = library.users_dir()
    waiting, late = {}, {}
    for user_dir in sorted(users_dir.iterdir()) if users_dir.is_dir() else []:
        if not user_dir.is_dir() or user_dir.is_symlink() or owner_of(user_dir.name) is None:
            continue
        pending = PendingPlaceholders(library.local_path(user_dir.name), library.server_path(user_dir.name)).load()
        if pending:
            age = oldest_age(pending, now)
            waiting[user_dir.name] = {"pending": len(pending), "oldest_hours": round(age / 3600, 1)}
            if age > PLACEHOLDER_MAX_PENDING_SECONDS:
                late[user_dir.name] = waiting[user_dir.name] | {
                    "late": sum(1 for since in pending.values() if now - since > PLACEHOLDER_MAX_PENDING_SECONDS)}
    return AssetCheckResult(passed=not late, severity=AssetCheckSeverity.WARN, description=(
        f"placeholders pending for more than a day in the libraries of {', '.join(late)}" if late else None),
        metadata={"users_with_pending": len(waiting), "users_late": MetadataValue.json(sorted(late)),
                  "pending": MetadataValue.json(waiting | late)})
