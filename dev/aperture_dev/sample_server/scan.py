"""A library scan as the real servers do it, for folders on disk (aperture's own picks libraries).

Series folders become Series (title from tvshow.nfo, else the folder name), "Season N" folders
Seasons, and files with an SxxEyy token (or numbered by their NFO) Episodes, with DateCreated from the
sibling NFO's <dateadded> (Emby and Jellyfin both honour it); tvshow.nfo's <mpaa> and <tag> become the series'
OfficialRating and Tags, so parental controls apply to scanned series as to the others. Like Jellyfin 10.11.8+,
a .strm whose first line is not an http(s)/rtsp/rtp URL is skipped. Item ids derive from the file path, so a
rescan keeps ids stable.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from aperture_dev.sample_server.model import SERVER_ID, Item, LibraryState, sort_name, wire_date

EPISODE = re.compile(r"S(\d{1,4})E(\d{1,4})(?:-E(\d{1,4}))?", re.IGNORECASE)
SEASON = re.compile(r"season\s*(\d+)", re.IGNORECASE)
VIDEO = {".strm", ".mkv", ".mp4", ".avi", ".m4v", ".ts", ".webm"}
URL_SCHEMES = ("http://", "https://", "rtsp://", "rtp://")


def _nfo(path: Path) -> ET.Element | None:
    try:
        return ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None


def _text(root: ET.Element | None, tag: str) -> str | None:
    node = root.find(tag) if root is not None else None
    return node.text.strip() if node is not None and node.text and node.text.strip() else None


def _date_added(root: ET.Element | None, fallback: Path) -> str:
    value = _text(root, "dateadded")
    if value:
        try:
            return wire_date(datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))
        except ValueError:
            pass
    return wire_date(datetime.fromtimestamp(fallback.lstat().st_mtime, UTC))


def playable(path: Path, state: LibraryState) -> bool:
    """Jellyfin (10.11.8+) ignores .strm files holding anything but a stream URL."""
    if path.suffix.lower() != ".strm" or state.mode == "emby":
        return True
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return False
    target = next((line for line in lines if line and not line.startswith("#")), "")
    return target.lower().startswith(URL_SCHEMES)


def _numbers(file: Path, nfo: ET.Element | None) -> tuple[int, int, int | None] | None:
    """(season, episode, end) from an SxxEyy token, else from the sibling NFO (how the aperture placeholder,
    which has no token, gets its number on the real servers); None when neither has them."""
    token = EPISODE.search(file.name)
    if token:
        return int(token.group(1)), int(token.group(2)), int(token.group(3)) if token.group(3) else None
    season, episode = _text(nfo, "season"), _text(nfo, "episode")
    if season is None or episode is None or not season.isdigit() or not episode.isdigit():
        return None
    return int(season), int(episode), None


def scan_folder(state: LibraryState, folder: dict) -> None:
    """Replace the folder's items with what is on disk now."""
    library_id = folder["ItemId"]
    found: dict[str, Item] = {}
    for location in folder.get("Locations", []):
        root = Path(location)
        if not root.is_dir():
            continue
        for series_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            _scan_series(state, library_id, series_dir, found)
    state.replace_library_items(library_id, found)


def _scan_series(state: LibraryState, library_id: str, series_dir: Path, found: dict[str, Item]) -> None:
    nfo = _nfo(series_dir / "tvshow.nfo")
    name = _text(nfo, "title") or series_dir.name
    series_id = state.new_id(f"scan/{series_dir}")
    base = {"Name": name, "ServerId": SERVER_ID, "Id": series_id, "Type": "Series", "IsFolder": True,
            "LocationType": "FileSystem", "ImageTags": {}}
    rating = _text(nfo, "mpaa")
    if rating:  # the servers read <mpaa> as OfficialRating, which parental controls then judge
        base["OfficialRating"] = rating
    extra = {"Path": str(series_dir), "SortName": _text(nfo, "sorttitle") or sort_name(name),
             "DateCreated": _date_added(nfo, series_dir), "Overview": _text(nfo, "plot") or "",
             "Tags": [node.text.strip() for node in (nfo.findall("tag") if nfo is not None else [])
                      if node.text and node.text.strip()]}
    found[series_id] = Item(series_id, "Series", library_id, None, None, extra["SortName"], base, extra)
    for season_dir in sorted(p for p in series_dir.iterdir() if p.is_dir()):
        match = SEASON.fullmatch(season_dir.name.strip())
        if not match and season_dir.name.strip().lower() != "specials":
            continue
        number = int(match.group(1)) if match else 0
        season_id = state.new_id(f"scan/{season_dir}")
        sbase = {"Name": "Specials" if number == 0 else f"Season {number}", "ServerId": SERVER_ID, "Id": season_id,
                 "Type": "Season", "IsFolder": True, "IndexNumber": number, "SeriesId": series_id,
                 "SeriesName": name, "LocationType": "FileSystem", "ImageTags": {}}
        found[season_id] = Item(season_id, "Season", library_id, series_id, season_id,
                                f"{extra['SortName']}/{number:04d}", sbase, {"Path": str(season_dir)})
        for file in sorted(season_dir.iterdir()):
            if file.suffix.lower() not in VIDEO or not playable(file, state):
                continue
            episode_nfo = _nfo(file.with_suffix(".nfo"))
            numbers = _numbers(file, episode_nfo)
            if numbers is None:
                continue
            season_no, episode_no, episode_end = numbers
            item_id = state.new_id(f"scan/{file}")
            ebase = {"Name": _text(episode_nfo, "title") or file.stem, "ServerId": SERVER_ID, "Id": item_id,
                     "Type": "Episode", "IsFolder": False, "ParentIndexNumber": season_no,
                     "IndexNumber": episode_no, "SeriesId": series_id, "SeriesName": name, "SeasonId": season_id,
                     "LocationType": "FileSystem", "MediaType": "Video", "ImageTags": {}}
            if episode_end:
                ebase["IndexNumberEnd"] = episode_end
            eextra = {"Path": str(file), "DateCreated": _date_added(episode_nfo, file), "ProviderIds": {}}
            found[item_id] = Item(item_id, "Episode", library_id, series_id, season_id,
                                  f"{extra['SortName']}/{season_no:04d}/{episode_no:04d}", ebase, eextra)
