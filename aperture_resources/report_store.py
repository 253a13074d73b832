"""SQL for what the `aperture` command shows an admin: every user with their state, one user's current picks in
full, and how each user's picks changed since their previous run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class UserState:
    """A user the server has listed, with what aperture holds for them."""

    id: str
    name: str
    partition_key: str | None
    disabled: bool
    removed: bool
    history_synced_at: datetime | None
    picks: int
    picks_at: datetime | None
    cold_start: bool | None
    top_picks: str | None  # the first three, by name
    library_path: str | None


@dataclass(frozen=True)
class FullPick:
    """One pick of a user's latest run, with everything the run stored about it."""

    rank: int
    series_id: str
    name: str
    year: int | None
    score: float
    components: dict
    evidence: list
    explanation: str | None
    created_at: datetime
    cold_start: bool
    parameters: dict


def user_states(conn: psycopg.Connection) -> list[UserState]:
    """Every user the server has listed, by name, with their current picks in brief."""
    with conn.cursor(row_factory=class_row(UserState)) as cur:
        return cur.execute(
            "SELECT u.id, u.name, u.partition_key, u.is_disabled AS disabled, u.removed_at IS NOT NULL AS removed, "
            "w.synced_at AS history_synced_at, p.picks, p.picks_at, p.cold_start, p.top_picks, "
            "l.path AS library_path "
            "FROM media_users u LEFT JOIN user_watch_sync w ON w.user_id = u.id "
            "LEFT JOIN picks_libraries l ON l.user_id = u.id "
            "CROSS JOIN LATERAL (SELECT count(r.rank) AS picks, max(r.created_at) AS picks_at, "
            "  bool_or(r.cold_start) AS cold_start, "
            "  string_agg(s.name, ', ' ORDER BY r.rank) FILTER (WHERE r.rank <= 3) AS top_picks "
            "  FROM latest_recommendations r JOIN series s ON s.id = r.series_id WHERE r.user_id = u.id) p "
            "ORDER BY lower(u.name), u.id").fetchall()


def latest_picks(conn: psycopg.Connection, user_id: str) -> list[FullPick]:
    """The user's current picks in rank order (empty before their first recommendations run)."""
    return latest_picks_of(conn, [user_id]).get(user_id, [])


def new_picks(conn: psycopg.Connection) -> dict[str, int | None]:
    """Per user, how many of their current picks their previous run did not have (None: no previous run)."""
    rows = conn.execute(
        """
        WITH runs AS (
            SELECT id, user_id, row_number() OVER (PARTITION BY user_id ORDER BY created_at DESC, id DESC) AS n
            FROM recommendation_runs)
        SELECT latest.user_id,
               CASE WHEN previous.id IS NULL THEN NULL ELSE
                 (SELECT count(*) FROM recommendations p WHERE p.run_id = latest.id AND NOT EXISTS (
                    SELECT 1 FROM recommendations q WHERE q.run_id = previous.id AND q.series_id = p.series_id))
               END
        FROM runs latest LEFT JOIN runs previous ON previous.user_id = latest.user_id AND previous.n = 2
        WHERE latest.n = 1
        """).fetchall()
    return dict(rows)


def latest_picks_of(conn: psycopg.Connection, user_ids: list[str]) -> dict[str, list[FullPick]]:
    """Each user's current picks in rank order (users without picks are left out)."""
    picks: dict[str, list[FullPick]] = {}
    for user_id, *row in conn.execute(
            "SELECT r.user_id, r.rank, r.series_id, s.name, s.year, r.score, r.components, r.evidence, r.explanation, "
            "r.created_at, r.cold_start, runs.parameters "
            "FROM latest_recommendations r JOIN series s ON s.id = r.series_id "
            "JOIN recommendation_runs runs ON runs.id = r.run_id WHERE r.user_id = ANY(%s) ORDER BY r.user_id, r.rank",
            (user_ids,)):
        picks.setdefault(user_id, []).append(FullPick(*row))
    return picks
