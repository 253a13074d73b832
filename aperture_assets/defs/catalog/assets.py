"""`series_catalog`: the spec's sync-series job as an asset (series, seasons, episodes, posters)."""


import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

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
from aperture_assets.wiring.stage import stage_body
from aperture_resources.catalog_store import (
    SeriesPreview,
    active_count,
    active_series_by_library,
    newest_series,
    sync_table,
)
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerResource
from aperture_resources.media_server.base import SEASON_FIELDS
from aperture_resources.pipeline_config import PipelineConfig


class EmptyReadError(RuntimeError):
    """The server listed no series although the catalog has some: treat as a failed read."""


@asset(
    pool="media_server",
    group_name="catalog",
    kinds={"postgres"},
    description="Series, seasons and episodes of the enabled TV libraries (the spec's sync-series).",
)
@stage_body
def series_catalog(
    context: AssetExecutionContext, media_server: MediaServerResource, database: DatabaseResource,
    pipeline: PipelineConfig,
) -> MaterializeResult:
    started = time.perf_counter()
    with media_server.client() as client:
        folders = client.libraries()
        libraries = select_tv_libraries(folders, media_server.wanted_libraries(), media_server.picks_root)
        ids = [str(library.get("ItemId") or library.get("Id")) for library in libraries]
        with ThreadPoolExecutor(3 * len(ids)) as pool:  # every read at once; the client bounds requests in flight
            series = [pool.submit(client.items, "Series", i, client.series_fields()) for i in ids]
            seasons = [pool.submit(client.items, "Season", i, SEASON_FIELDS) for i in ids]
            episodes = [pool.submit(client.episodes, i, client.episode_fields()) for i in ids]
            series_items = [{**item, "_library": i} for i, f in zip(ids, series, strict=True) for item in f.result()]
            season_items = [item for f in seasons for item in f.result()]
            episode_items = [item for f in episodes for item in f.result()]
        requests = client.requests_made
        poster = client.poster_path
    read_seconds = time.perf_counter() - started

    problems: list[str] = []
    series_rows, series_skipped = unique_rows(
        series_items,
        lambda it: series_row(it, it["_library"], poster(it["Id"], primary_image_tag(it))),
        problems,
    )
    season_rows, season_skipped = unique_rows(season_items, season_row, problems)
    episode_rows, episode_skipped = unique_rows(episode_items, episode_row, problems)
    library_rows, _ = unique_rows(({**f, "Id": f.get("ItemId") or f.get("Id")} for f in folders), library_row)
    skipped = series_skipped + season_skipped + episode_skipped
    for problem in problems[:20]:
        context.log.warning("untrusted server data: %s", problem)

    with database.connect() as conn:
        if not series_rows and active_count(conn, "series"):
            raise EmptyReadError("The media server listed no series in the enabled libraries although the "
                                 "catalog holds some; nothing was marked removed. Check the server's libraries.")
        read = Counter(row[1] for row in series_rows)
        shrunk = shrunken_libraries(active_series_by_library(conn), read, pipeline.mass_removal_threshold)
        if shrunk:
            context.log.warning("libraries %s lost most of their series in one read: nothing is marked removed in "
                                "this sync and downstream stages are blocked", shrunk)
        remove = not shrunk
        sync_table(conn, "libraries", library_rows, mark_removed=remove)
        counts = {
            "series": sync_table(conn, "series", series_rows, mark_removed=remove),
            "seasons": sync_table(conn, "seasons", season_rows, mark_removed=remove),
            "episodes": sync_table(conn, "episodes", episode_rows, mark_removed=remove),
        }
        preview = newest_series(conn)

    duration = time.perf_counter() - started
    context.log.info(
        "catalog: %d series, %d episodes from %d libraries in %.2fs (%d requests)",
        len(series_rows), len(episode_rows), len(libraries), duration, requests,
    )
    metadata = {
        f"{table}_{field}": getattr(c, field)
        for table, c in counts.items()
        for field in ("new", "updated", "restored", "removed")
    }
    metadata |= {
        "series_total": len(series_rows),
        "episodes_total": len(episode_rows),
        "libraries": ", ".join(str(lib.get("Name")) for lib in libraries),
        "items_skipped_malformed": skipped,
        "untrusted_values": MetadataValue.json(problems[:100]),
        "shrunken_libraries": MetadataValue.json(shrunk),
        "rows_changed": sum(c.changed for c in counts.values()),
        "http_requests": requests,
        "read_seconds": round(read_seconds, 3),
        "duration_seconds": round(duration, 3),
        "preview": MetadataValue.md(_preview_markdown(preview)),
    }
    return MaterializeResult(metadata=metadata)


def _preview_markdown(rows: list[SeriesPreview]) -> str:
    lines = ["| Series | Year | Network | Library | Episodes |", "|---|---|---|---|---|"]
    for s in rows:
        safe = str(s.name).replace("|", "\\|")
        lines.append(f"| {safe} | {s.year or ''} | {s.network or ''} | {s.library or ''} | {s.episodes} |")
    return "\n".join(lines)
