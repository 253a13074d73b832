"""The libraries' data-quality check: the folders on disk match the latest picks."""

from pathlib import Path

from dagster import AssetCheckExecutionContext, AssetCheckResult, MetadataValue, asset_check
from lxml import etree

from aperture_assets.wiring.partitions import users_partitions
from aperture_resources.database import DatabaseResource
from aperture_resources.library.naming import series_folder_names
from aperture_resources.library.resource import LibraryResource
from aperture_resources.library_store import picks_by_user


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


@asset_check(asset="series_library", description="Every enabled user's folder holds exactly their latest picks, "
             "in rank order by sort title.")
def library_matches_recommendations(context: AssetCheckExecutionContext, library: LibraryResource,
                                    database: DatabaseResource) -> AssetCheckResult:
    user_ids = context.instance.get_dynamic_partitions(users_partitions.name)
    with database.connect() as conn:
        picks = picks_by_user(conn, user_ids)
    mismatches = {}
    for user_id in user_ids:
        names = series_folder_names(picks[user_id])
        expected = [names[p.series_id] for p in sorted(picks[user_id], key=lambda p: p.rank)]
        actual = folders_in_rank_order(library.local_path(library.user_folder(user_id, "")))
        if actual != expected:
            mismatches[user_id] = {"expected": expected, "on_disk": actual}
    return AssetCheckResult(passed=not mismatches, metadata={
        "users_checked": len(user_ids), "users_mismatched": len(mismatches),
        "mismatches": MetadataValue.json(mismatches)})
