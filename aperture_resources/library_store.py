"""SQL for the library stage: every user's latest picks with their series and active episodes, read in two
set-based statements for a whole run, whatever the number of users."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import psycopg

from aperture_resources.library.model import EpisodeSource, PickedSeries


def picks_by_user(conn: psycopg.Connection, user_ids: Sequence[str]) -> dict[str, list[PickedSeries]]:
    """Latest picks per user in rank order; series removed from the server since the run are left out."""
    picks = conn.execute(
        """
        SELECT r.user_id, r.rank, s.id, s.name, s.year, s.original_title, s.overview, s.genres, s.studios,
               s.status, s.official_rating, s.community_rating, s.premiere_date, s.end_year,
               s.tvdb_id, s.tmdb_id, s.imdb_id
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
        (list({row[2] for row in picks}),),
    )
    for series_id, item_id, season, episode, end, name, path, premiere, runtime in rows:
        episodes[series_id].append(EpisodeSource(item_id, season, episode, end, name, path, premiere, runtime))
    result: dict[str, list[PickedSeries]] = {user_id: [] for user_id in user_ids}
    for user_id, rank, sid, name, year, original, overview, genres, studios, *rest in picks:
        status, rating, community, premiere, end_year, tvdb, tmdb, imdb = rest
        result[user_id].append(PickedSeries(
            rank=rank, series_id=sid, title=name, year=year, original_title=original, overview=overview,
            genres=tuple(genres or ()), studios=tuple(studios or ()), status=status, official_rating=rating,
            community_rating=community, premiere_date=premiere, end_year=end_year, tvdb_id=tvdb, tmdb_id=tmdb,
            imdb_id=imdb, episodes=tuple(episodes[sid]),
        ))
    return result
