"""`series_catalog`: the catalog synced from the media server (series, seasons, episodes, posters)."""

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from aperture_assets.logic.catalog_rows import (
    episode_row,
    library_row,
    primary_image_tag,
    season_row,
    select_tv_libraries,
    series_row,
    shrunken_libraries,
    unique_rows,
)
from aperture_assets.wiring import progress
from aperture_assets.wiring.stage import stage_body
from aperture_resources.catalog_store import (
    CatalogRead,
    CatalogStage,
    SeriesPreview,
    active_count,
    active_ids,
    active_series_by_library,
    load_catalog_reads,
    newest_series,
    save_catalog_reads,
    sync_table,
)
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerClient, MediaServerResource
from aperture_resources.media_server.base import SEASON_FIELDS, IncompleteReadError
from aperture_resources.pipeline_config import PipelineConfig


class EmptyReadError(RuntimeError):
    """The server listed no series although the catalog has some: treat as a failed read."""


# (catalog table, the server's item type) in the order they are written (episodes refer to seasons and series)
KINDS = (("series", "Series"), ("seasons", "Season"), ("episodes", "Episode"))
FULL_READ_EVERY = timedelta(hours=24)
# Items the server saved up to this long before the last read started are asked for again (clock skew between
# aperture and the server; re-reading an unchanged item writes nothing).
SAVED_MARGIN = timedelta(hours=1)


@dataclass
class Rows:
    """Catalog rows built from server items, with what was skipped or repaired."""

    problems: list[str] = field(default_factory=list)
    skipped: int = 0
    series_by_library: Counter = field(default_factory=Counter)

    def build(self, table: str, items: list[dict], library_id: str, poster: Callable) -> list[tuple]:
        if table == "series":
            rows, skipped = unique_rows(items, lambda it: series_row(it, library_id, poster(it["Id"],
                                                                     primary_image_tag(it))), self.problems)
            self.series_by_library[library_id] += len(rows)
        else:
            real = [e for e in items if e.get("LocationType") != "Virtual"]  # Emby 4.8 cannot filter them
            rows, skipped = unique_rows(real, season_row if table == "seasons" else episode_row, self.problems)
        self.skipped += skipped
        return rows


def read_params(client: MediaServerClient, item_type: str, library_id: str, **extra: Any) -> dict[str, Any]:
    fields = {"Series": client.series_fields(), "Season": SEASON_FIELDS, "Episode": client.episode_fields()}
    more = client.real_episode_params() if item_type == "Episode" else {}
    return client.items_params(item_type, library_id, fields[item_type], **more, **extra)


def full_read_reason(previous: dict[str, CatalogRead], ids: list[str], now: datetime) -> str | None:
    """Why this sync must read every item, or None to ask the server only for what changed."""
    if not previous:
        return "no previous complete read"
    if set(previous) != set(ids):
        return "the enabled TV libraries changed"
    if any(now - r.full_read_at >= FULL_READ_EVERY for r in previous.values()):
        return "periodic full read"
    return None


def read_changes(client: MediaServerClient, conn, previous: dict[str, CatalogRead], rows: Rows
                 ) -> tuple[dict[str, list[tuple]] | None, str]:
    """Rows of the items the server saved since the last read, or (None, why a full read is needed).

    Sound because of what the fast path requires: every count equal to the last complete read's (a removal
    lowers one, and an addition shows up as an item saved since), at most one page of changes, and every
    changed item already an active catalog row (so nothing new can hide behind a removal)."""
    changed: dict[str, list[tuple]] = {table: [] for table, _ in KINDS}
    for library_id, read in previous.items():
        since = (read.read_started_at - SAVED_MARGIN).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for table, item_type in KINDS:
            _, total = client._page("/Items", {**read_params(client, item_type, library_id),
                                               **client.count_params()}, 0, 1)
            if total is None or total != read.totals.get(item_type):
                return None, f"{item_type} count of library {library_id} changed ({read.totals.get(item_type)} -> " \
                             f"{total})"
            items, saved = client._page("/Items", {**read_params(client, item_type, library_id,
                                                                 minDateLastSaved=since),
                                                   **client.count_params()}, 0, client.page_size)
            if saved is None or saved != len(items) or saved >= client.page_size:
                return None, f"{saved} {item_type} items of library {library_id} saved since the last read"
            changed[table] += rows.build(table, items, library_id, client.poster_path)
    for table, found in changed.items():
        ids = [row[0] for row in found]
        if len(active_ids(conn, table, ids)) != len(set(ids)):
            return None, f"new {table} on the server"
    return changed, ""


@asset(
    pool="media_server",
    group_name="catalog",
    kinds={"postgres"},
    description="Series, seasons and episodes of the enabled TV libraries, synced from the media server.",
)
@stage_body
def series_catalog(
    context: AssetExecutionContext, media_server: MediaServerResource, database: DatabaseResource,
    pipeline: PipelineConfig,
) -> MaterializeResult:
    """Asks the server only for what changed since the last complete read when that provably shows every
    change (`read_changes`), else reads every item, streaming pages into the database."""
    started, now = time.perf_counter(), datetime.now(UTC)
    rows = Rows()
    with media_server.client() as client, database.connect() as conn:
        folders = client.libraries()
        libraries = select_tv_libraries(folders, media_server.wanted_libraries(), media_server.picks_root)
        ids = [str(library.get("ItemId") or library.get("Id")) for library in libraries]
        library_rows, _ = unique_rows(({**f, "Id": f.get("ItemId") or f.get("Id")} for f in folders), library_row)
        previous = load_catalog_reads(conn)
        reason = full_read_reason(previous, ids, now)
        changed = None
        if reason is None:
            changed, reason = read_changes(client, conn, previous, rows)
        if changed is not None:
            sync_table(conn, "libraries", library_rows, mark_removed=True)
            counts = {table: sync_table(conn, table, changed[table], mark_removed=False) for table, _ in KINDS}
            save_catalog_reads(conn, [replace(r, read_started_at=now) for r in previous.values()])
            shrunk: list[str] = []
            series_total = active_count(conn, "series")
            episodes_total = active_count(conn, "episodes")
        else:
            rows = Rows()  # forget what a changes-only attempt built
            stage = CatalogStage(conn, [table for table, _ in KINDS])
            totals = stream_read(client, ids, stage, rows)
            read_seconds = time.perf_counter() - started
            repeating = [table for table, _ in KINDS if stage.repeating_reads(table)]
            if repeating:
                raise IncompleteReadError(
                    f"The media server sent the same {', '.join(repeating)} twice within one read (its order "
                    "changed during the read, so other items were skipped); nothing was changed.")
            if not stage.staged["series"] and active_count(conn, "series"):
                raise EmptyReadError("The media server listed no series in the enabled libraries although the "
                                     "catalog holds some; nothing was marked removed. Check the server's libraries.")
            shrunk = shrunken_libraries(active_series_by_library(conn), rows.series_by_library,
                                        pipeline.mass_removal_threshold)
            if shrunk:
                context.log.warning("libraries %s lost most of their series in one read: nothing is marked removed "
                                    "in this sync and downstream stages are blocked", shrunk)
            remove = not shrunk
            sync_table(conn, "libraries", library_rows, mark_removed=remove)
            counts = {table: stage.sync(table, mark_removed=remove) for table, _ in KINDS}
            # only a read the catalog now matches may serve as the base of the next "what changed" read
            save_catalog_reads(conn, [CatalogRead(i, totals[i], now, now) for i in ids] if remove else [])
            series_total = sum(rows.series_by_library.values())
            episodes_total = stage.staged["episodes"]
        preview = newest_series(conn)
        requests = client.requests_made
    read_seconds = time.perf_counter() - started if changed is not None else read_seconds
    for problem in rows.problems[:20]:
        context.log.warning("untrusted server data: %s", problem)

    duration = time.perf_counter() - started
    context.log.info(
        "catalog: %d series, %d episodes from %d libraries in %.2fs (%d requests, %s read%s)",
        series_total, episodes_total, len(libraries), duration, requests,
        "changes-only" if changed is not None else "full", f": {reason}" if reason else "",
    )
    metadata = {
        f"{table}_{field}": getattr(c, field)
        for table, c in counts.items()
        for field in ("new", "updated", "restored", "removed")
    }
    metadata |= {
        "series_total": series_total,
        "episodes_total": episodes_total,
        "libraries": ", ".join(str(lib.get("Name")) for lib in libraries),
        "read": "changes" if changed is not None else "full",
        "read_reason": reason,
        "items_skipped_malformed": rows.skipped,
        "untrusted_values": MetadataValue.json(rows.problems[:100]),
        "shrunken_libraries": MetadataValue.json(shrunk),
        "rows_changed": sum(c.changed for c in counts.values()),
        "http_requests": requests,
        "read_seconds": round(read_seconds, 3),
        "duration_seconds": round(duration, 3),
        "preview": MetadataValue.md(_preview_markdown(preview)),
    }
    return MaterializeResult(metadata=metadata)


def stream_read(client: MediaServerClient, ids: list[str], stage: CatalogStage, rows: Rows) -> dict[str, dict]:
    """Every series, season and episode of the libraries, staged page by page as they arrive (all reads at once,
    the client bounding requests in flight; a bounded queue holds the pages between them and the database).
    Returns the server's counts per library and item type. A failed or incomplete read raises."""
    reads = [(n, table, item_type, library_id) for n, ((table, item_type), library_id)
             in enumerate((kind, i) for kind in KINDS for i in ids)]
    pages: queue.Queue = queue.Queue(maxsize=2 * client.concurrency)
    totals: dict[str, dict] = {i: {} for i in ids}
    stop = threading.Event()

    def offer(entry: tuple) -> bool:
        """Queue `entry` unless the writer has stopped (then False)."""
        while not stop.is_set():
            try:
                pages.put(entry, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def read(n: int, table: str, item_type: str, library_id: str) -> None:
        try:
            for page, total in client.iter_pages("/Items", read_params(client, item_type, library_id)):
                totals[library_id][item_type] = total
                if not offer((n, page)):
                    return
        except BaseException as exc:  # handed to the writing thread, which raises it
            offer((n, exc))
        else:
            offer((n, None))

    with ThreadPoolExecutor(len(reads)) as pool:
        for args in reads:
            pool.submit(read, *args)
        try:
            done = written = 0
            while done < len(reads):
                n, page = pages.get()
                if isinstance(page, BaseException):
                    raise page
                if page is None:
                    done += 1
                    continue
                _, table, _, library_id = reads[n]
                stage.write(table, n, rows.build(table, page, library_id, client.poster_path))
                written += len(page)
                progress.advance("series_catalog", "items", written,
                                 sum(t for counts in totals.values() for t in counts.values()) or None)
        finally:
            stop.set()
    return totals


def _preview_markdown(rows: list[SeriesPreview]) -> str:
    lines = ["| Series | Year | Network | Library | Episodes |", "|---|---|---|---|---|"]
    for s in rows:
        safe = str(s.name).replace("|", "\\|")
        lines.append(f"| {safe} | {s.year or ''} | {s.network or ''} | {s.library or ''} | {s.episodes} |")
    return "\n".join(lines)
