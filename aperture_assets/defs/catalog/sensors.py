"""`media_library_changes`: start the catalog sync when the server's TV libraries changed.

A cheap poll: per enabled TV library, one request for the newest episode and the episode count.
Their fingerprint is the cursor; a new fingerprint requests `sync_series` (run key = fingerprint, so
one change never starts two syncs). The first evaluation only records the fingerprint.
"""

import hashlib

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from aperture_assets.logic.catalog_rows import select_tv_libraries
from aperture_assets.wiring.jobs import media_server_missing
from aperture_assets.wiring.log_redaction import redact_logs
from aperture_resources.media_server import MediaServerClient, MediaServerResource


def library_fingerprint(client: MediaServerClient, tv_libraries: list[str], picks_root: str) -> str:
    """A short hash of (library, episode count, newest episode) for every enabled TV library."""
    parts = []
    for library in select_tv_libraries(client.libraries(), tv_libraries, picks_root):
        library_id = str(library.get("ItemId") or library.get("Id"))
        page = client.get_json("/Items", client.query(
            parentId=library_id, includeItemTypes=["Episode"], recursive=True, sortBy=["DateCreated"],
            sortOrder="Descending", limit=1, fields=["DateCreated"], enableUserData=False))
        newest = (page.get("Items") or [{}])[0] if isinstance(page, dict) else {}
        parts.append(f"{library_id}:{page.get('TotalRecordCount') if isinstance(page, dict) else '?'}:"
                     f"{newest.get('Id', '')}:{newest.get('DateCreated', '')}")
    return hashlib.sha256("|".join(sorted(parts)).encode()).hexdigest()[:16]


@sensor(
    job_name="sync_series",
    name="media_library_changes",
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Polls the enabled TV libraries (one request each) and runs sync_series when they changed.",
)
def media_library_changes(context: SensorEvaluationContext, media_server: MediaServerResource):
    redact_logs(context.log)
    if skip := media_server_missing(media_server):
        return skip
    with media_server.client() as client:
        fingerprint = library_fingerprint(client, media_server.wanted_libraries(), media_server.picks_root)
    previous = context.cursor
    context.update_cursor(fingerprint)
    if previous is None:
        return SkipReason(f"recorded the libraries' fingerprint {fingerprint}")
    if previous == fingerprint:
        return SkipReason("no change in the TV libraries")
    return RunRequest(run_key=f"library-change-{fingerprint}")
