"""`library_placeholders`: finish the sorting placeholders a run left pending, without a run.

A run waits for the server's rescan only a few seconds (real servers scan asynchronously, a large library for
minutes); every placeholder not yet confirmed played stays in its user's `.placeholders-pending`. Each tick
reads those files, lists each such user's library once, marks the pending placeholders played and removes
those the server now lists as played for the user (confirmed by path, by a second read). No waiting, no run:
a user with nothing pending costs nothing but a file check.
"""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from aperture_assets.wiring.jobs import media_server_missing
from aperture_assets.wiring.log_redaction import redact_logs
from aperture_resources.access_store import picks_libraries
from aperture_resources.database import DatabaseResource
from aperture_resources.library.resource import LibraryResource
from aperture_resources.library.server_sync import PendingPlaceholders, mark_placeholders
from aperture_resources.media_server import MediaServerError


def finish_pending_placeholders(library: LibraryResource, database: DatabaseResource, log=None) -> dict[str, int]:
    """One pass over every picks library aperture made; returns {"users", "marked", "confirmed", "pending"}."""
    with database.connect() as conn:
        recorded = picks_libraries(conn)
    stores = {}
    for user_id in sorted(recorded):
        folder = library.user_folder(user_id, "")
        store = PendingPlaceholders(library.local_path(folder), library.server_path(folder))
        if store.file.exists():
            stores[user_id] = store
    totals = {"users": 0, "marked": 0, "confirmed": 0, "pending": 0}
    if not stores:
        return totals
    with library.media_server.client() as client:
        for user_id, store in stores.items():
            pending = store.load()
            if not pending:
                store.update()  # an empty or stale file: tidied away
                continue
            totals["users"] += 1
            try:
                sync = mark_placeholders(client, user_id, recorded[user_id].library_id, pending)
            except MediaServerError as exc:  # one user's failure never stops the others
                if log is not None:
                    log.warning("placeholders of user %s: %s", user_id, exc)
                totals["pending"] += len(pending)
                continue
            left = store.update(remove=sync.confirmed)
            totals["marked"] += sync.marked
            totals["confirmed"] += len(sync.confirmed)
            totals["pending"] += len(left)
    return totals


@sensor(
    name="library_placeholders",
    minimum_interval_seconds=180,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks the picks libraries' pending sorting placeholders played once the server's scan lists "
    "them, confirming each by its path; no run is started.",
)
def library_placeholders(context: SensorEvaluationContext, library: LibraryResource, database: DatabaseResource):
    redact_logs(context.log)
    if skip := media_server_missing(library.media_server):
        return skip
    totals = finish_pending_placeholders(library, database, context.log)
    if not totals["users"]:
        return SkipReason("no placeholder pending")
    return SkipReason(f"{totals['users']} users had placeholders pending: {totals['marked']} marked played, "
                      f"{totals['confirmed']} confirmed, {totals['pending']} still pending")
