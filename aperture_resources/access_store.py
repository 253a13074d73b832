"""SQL for the picks libraries aperture made and the library access it changed (see migration 0006)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class PicksLibrary:
    user_id: str
    library_id: str
    name: str
    path: str


def picks_libraries(conn: psycopg.Connection) -> dict[str, PicksLibrary]:
    """Every picks library aperture made, by user id."""
    with conn.cursor(row_factory=class_row(PicksLibrary)) as cur:
        rows = cur.execute("SELECT user_id, library_id, name, path FROM picks_libraries").fetchall()
    return {row.user_id: row for row in rows}


def save_picks_libraries(conn: psycopg.Connection, libraries: Iterable[PicksLibrary]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO picks_libraries (user_id, library_id, name, path) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (user_id) DO UPDATE SET library_id = EXCLUDED.library_id, name = EXCLUDED.name, "
            "path = EXCLUDED.path",
            [(lib.user_id, lib.library_id, lib.name, lib.path) for lib in libraries])


def forget_picks_libraries(conn: psycopg.Connection, user_ids: Iterable[str]) -> None:
    conn.execute("DELETE FROM picks_libraries WHERE user_id = ANY(%s)", (list(user_ids),))


def all_folders_users(conn: psycopg.Connection) -> set[str]:
    """Users who could see every library before aperture gave them an explicit list."""
    return {row[0] for row in conn.execute("SELECT user_id FROM user_access WHERE all_folders")}


def record_access(conn: psycopg.Connection, all_folders: dict[str, bool]) -> None:
    """Remember each user's access as first seen (later runs never overwrite it)."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO user_access (user_id, all_folders) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        list(all_folders.items()))
