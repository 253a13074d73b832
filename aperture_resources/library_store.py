"""SQL for the library stage: users' latest picks with their series and active episodes, read in two set-based
statements for a batch of users (the stage reads a batch at a time, so memory does not grow with the users)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import psycopg
from psycopg.rows import namedtuple_row

from aperture_resources.library.model import EpisodeSource, PickedSeries


def picks_by_user(conn: psycopg.Connection, user_ids: Sequence[str],
                  episodes_too: bool = True) -> dict[str, list[PickedSeries]]:
    """Latest picks per user in rank order; series removed from the server since the run are left out. Without
    `episodes_too` the picks carry no episodes (for callers that need only the series)."""
    with conn.cursor(row_factory=namedtuple_row) as cur:
        picks = cur.execute(
            """
            SELECT r.user_id, r.rank, s.id, s.name, s.year, s.original_title, s.overview, s.genres, s.studios,
                   s.status, s.official_rating, s.community_rating, s.premiere_date, s.end_year,
                   s.tvdb_id, s.tmdb_id, s.imdb_id, r.explanation, s.library_id, s.path, s.tags
            FROM latest_recommendations r JOIN series s ON s.id = r.series_id
            WHERE r.user_id = ANY(%s) AND s.removed_at IS NULL
            ORDER BY r.user_id, r.rank
            """,
            (list(user_ids),),
        ).fetchall()
    episodes: dict[str, list[EpisodeSource]] = defaultdict(list)
    rows = conn.execute(
        """
        SELECT series_id, id, season_number, episode_number, episode_number_end, name, path, premiere_date,
               runtime_ticks
        FROM episodes WHERE series_id = ANY(%s) AND removed_at IS NULL
        ORDER BY series_id, season_number, episode_number, id
        """,
        (list({pick.id for pick in picks}) if episodes_too else [],),
    )
    for series_id, item_id, season, episode, end, name, path, premiere, runtime in rows:
        episodes[series_id].append(EpisodeSource(item_id, season, episode, end, name, path, premiere, runtime))
    result: dict[str, list[PickedSeries]] = {user_id: [] for user_id in user_ids}
    for pick in picks:
        result[pick.user_id].append(PickedSeries(
            rank=pick.rank, series_id=pick.id, title=pick.name, year=pick.year, original_title=pick.original_title,
            overview=pick.overview, genres=tuple(pick.genres or ()), studios=tuple(pick.studios or ()),
            status=pick.status, official_rating=pick.official_rating, community_rating=pick.community_rating,
            premiere_date=pick.premiere_date, end_year=pick.end_year, tvdb_id=pick.tvdb_id, tmdb_id=pick.tmdb_id,
            imdb_id=pick.imdb_id, episodes=tuple(episodes[pick.id]), reason=pick.explanation,
            library_id=pick.library_id, path=pick.path, tags=tuple(pick.tags or ()),
        ))
    return result
