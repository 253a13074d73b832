"""`aperture user NAME ...`: an admin's per-user genre and tag exclusions, on top of the global
APERTURE_EXCLUDE_GENRES / APERTURE_EXCLUDE_TAGS, applied on the next recommendations run.

Names are checked against what the catalog holds (so a typo never becomes a rule that silently matches
nothing) and stored with the catalog's spelling; a wrong name stops the command with nothing written.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

from aperture_assets.logic.names import close_names
from aperture_resources.preference_store import (
    UserPreferences,
    catalog_genres,
    catalog_tags,
    delete_preferences,
    effective_exclusions,
    load_preferences,
    save_preferences,
)
from aperture_resources.settings import ConfigError, load_settings, split_list


class UnknownName(ConfigError):
    """A user, genre or tag on the command line matches nothing: exit 2 with one sentence, like a bad setting."""


@dataclass(frozen=True)
class MediaUser:
    id: str
    name: str
    is_disabled: bool
    partition_key: str | None


@dataclass(frozen=True)
class Changes:
    """What one `aperture user` call asks for; all of it is applied together, or none of it."""

    exclude_genres: Sequence[str] = ()
    include_genres: Sequence[str] = ()
    exclude_tags: Sequence[str] = ()
    clear_genres: Sequence[str] = ()
    clear_tags: Sequence[str] = ()
    reset: bool = False

    def any(self) -> bool:
        return self.reset or any((self.exclude_genres, self.include_genres, self.exclude_tags, self.clear_genres,
                                  self.clear_tags))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the user's name on the media server (any case), or their id")
    for flag, dest, text in (
            ("--exclude-genre", "exclude_genres", "never pick series of this genre for the user"),
            ("--include-genre", "include_genres",
             "let this genre back in for the user despite APERTURE_EXCLUDE_GENRES"),
            ("--exclude-tag", "exclude_tags", "never pick series with this tag for the user"),
            ("--clear-genre", "clear_genres", "forget the user's own rule for this genre"),
            ("--clear-tag", "clear_tags", "forget the user's own rule for this tag")):
        parser.add_argument(flag, dest=dest, action="append", default=[], metavar=flag.split("-")[-1].upper(),
                            help=f"{text} (repeatable)")
    parser.add_argument("--reset", action="store_true", help="forget all of the user's own rules")
    parser.add_argument("--show", action="store_true", help="print the user's rules (also printed after a change)")


def user(args: argparse.Namespace, echo: Callable[[str], None] = print) -> int:
    """Apply the command line's changes in one transaction, then print the user's effective rules."""
    from aperture_assets.cli.environment import prepare_environment
    from aperture_resources.database import DatabaseResource

    settings = load_settings()
    env = prepare_environment(settings)
    changes = Changes(exclude_genres=args.exclude_genres, include_genres=args.include_genres,
                      exclude_tags=args.exclude_tags, clear_genres=args.clear_genres, clear_tags=args.clear_tags,
                      reset=args.reset)
    with DatabaseResource(url=env["APERTURE_DATABASE_URL"]).connect() as conn:
        lines = edit_preferences(conn, args.name, changes, split_list(settings.exclude_genres),
                                 split_list(settings.exclude_tags))
    for line in lines:  # after the commit: what is printed is what is stored
        echo(line)
    return 0


def edit_preferences(conn: psycopg.Connection, name: str, changes: Changes, global_genres: Sequence[str],
                     global_tags: Sequence[str]) -> list[str]:
    """Validate every name first (raising UnknownName before any write), apply `changes`, return the lines
    describing the user's rules afterwards."""
    person = find_user(conn, name)
    prefs = load_preferences(conn, [person.id])[person.id]
    lines = []
    if changes.any():
        prefs = apply_changes(conn, prefs, changes)
        lines.append(f"saved {person.name}'s rules" if not prefs.is_empty()
                     else f"{person.name} has no own rules now: only the global ones apply")
    return lines + describe(person, prefs, global_genres, global_tags)


def apply_changes(conn: psycopg.Connection, prefs: UserPreferences, changes: Changes) -> UserPreferences:
    genres, tags = spellings(catalog_genres(conn)), spellings(catalog_tags(conn))
    own_genres = spellings([*prefs.exclude_genres, *prefs.include_genres])
    own_tags = spellings(prefs.exclude_tags)
    problems: list[str] = []
    exclude_genres = resolve(changes.exclude_genres, "genre", genres, problems)
    include_genres = resolve(changes.include_genres, "genre", genres, problems)
    exclude_tags = resolve(changes.exclude_tags, "tag", tags, problems)
    clear_genres = resolve(changes.clear_genres, "genre", {**genres, **own_genres}, problems)  # even if gone
    clear_tags = resolve(changes.clear_tags, "tag", {**tags, **own_tags}, problems)
    both = sorted(set(map(str.lower, exclude_genres)) & set(map(str.lower, include_genres)))
    problems += [f"genre '{genres[key]}' is both excluded and included" for key in both]
    if problems:
        raise UnknownName("; ".join(problems) + ". Nothing was changed.")

    base = UserPreferences(prefs.user_id) if changes.reset else prefs
    excluded = Names(base.exclude_genres).without(clear_genres).without(include_genres).plus(exclude_genres)
    included = Names(base.include_genres).without(clear_genres).without(exclude_genres).plus(include_genres)
    excluded_tags = Names(base.exclude_tags).without(clear_tags).plus(exclude_tags)
    updated = UserPreferences(prefs.user_id, excluded.sorted(), included.sorted(), excluded_tags.sorted())
    if updated.is_empty():
        delete_preferences(conn, prefs.user_id)  # no row means "global rules only", as for a new user
    else:
        save_preferences(conn, updated)
    return updated


class Names:
    """A case-insensitive list of names that keeps the first spelling it saw."""

    def __init__(self, names: Iterable[str]) -> None:
        self.items = spellings(names)

    def without(self, names: Iterable[str]) -> Names:
        drop = {n.lower() for n in names}
        return Names(v for k, v in self.items.items() if k not in drop)

    def plus(self, names: Iterable[str]) -> Names:
        return Names([*self.items.values(), *names])

    def sorted(self) -> list[str]:
        return sorted(self.items.values(), key=str.lower)


def spellings(names: Iterable[str]) -> dict[str, str]:
    """Lower-cased name -> the first spelling seen (the catalog lists its commonest spelling first)."""
    found: dict[str, str] = {}
    for name in names:
        found.setdefault(name.strip().lower(), name.strip())
    found.pop("", None)
    return found


def resolve(values: Sequence[str], kind: str, known: dict[str, str], problems: list[str]) -> list[str]:
    """The known spelling of each value; a sentence in `problems` for each unknown one."""
    resolved = []
    for value in values:
        key = value.strip().lower()
        if key in known:
            resolved.append(known[key])
            continue
        close = close_names(key, known.values())
        if close:
            problems.append(f"unknown {kind} '{value}'; close: {', '.join(close)}")
        elif known:
            problems.append(f"unknown {kind} '{value}'; no {kind} like it in the catalog")
        else:
            problems.append(f"unknown {kind} '{value}'; the catalog has no {kind}s yet (run `aperture run` first)")
    return resolved


def find_user(conn: psycopg.Connection, name: str) -> MediaUser:
    """The synced user with this id or partition key, else this name (exact case first, then any case)."""
    with conn.cursor(row_factory=class_row(MediaUser)) as cur:
        users = cur.execute("SELECT id, name, is_disabled, partition_key FROM media_users WHERE removed_at IS NULL "
                            "ORDER BY lower(name), id").fetchall()
    for matches in ([u for u in users if u.id == name], [u for u in users if u.partition_key == name],
                    [u for u in users if u.name == name],
                    [u for u in users if u.name.lower() == name.strip().lower()]):
        if len(matches) == 1:
            return matches[0]
        if matches:
            ids = ", ".join(f"{u.name} ({u.id})" for u in matches)
            raise UnknownName(f"'{name}' names several users: {ids}; give the id instead.")
    if not users:
        raise UnknownName(f"no user named '{name}': no users are synced yet (run `aperture run` first).")
    close = close_names(name, (u.name for u in users))
    hint = f"close: {', '.join(close)}" if close else "and none with a close name"
    raise UnknownName(f"no user named '{name}' among the {len(users)} synced users; {hint}.")


def describe(person: MediaUser, prefs: UserPreferences, global_genres: Sequence[str],
             global_tags: Sequence[str]) -> list[str]:
    """The user's effective rules, computed by the same `effective_exclusions` the recommendations stage uses."""
    genres, tags = effective_exclusions(prefs, global_genres, global_tags)
    state = " (disabled on the server: gets no picks)" if person.is_disabled else ""
    lines = [f"{person.name} ({person.id}){state}",
             f"  excluded genres: {labelled(genres, prefs.exclude_genres, global_genres, 'APERTURE_EXCLUDE_GENRES')}",
             f"  excluded tags: {labelled(tags, prefs.exclude_tags, global_tags, 'APERTURE_EXCLUDE_TAGS')}"]
    if prefs.include_genres:
        excluded_globally = {g.strip().lower() for g in global_genres}
        let_in = [g if g.lower() in excluded_globally else f"{g} (not in APERTURE_EXCLUDE_GENRES: no effect now)"
                  for g in prefs.include_genres]
        lines.insert(2, f"  let back in despite APERTURE_EXCLUDE_GENRES: {', '.join(let_in)}")
    lines.append("  applied on the next recommendations run")
    return lines


def labelled(effective: set[str], own: Sequence[str], global_names: Sequence[str], variable: str) -> str:
    shown = [(name, "own") for name in own if name.lower() in effective]
    seen = {name.lower() for name, _ in shown}
    for name in global_names:
        if name.strip().lower() in effective - seen:
            shown.append((name.strip(), variable))
            seen.add(name.strip().lower())
    return ", ".join(f"{name} ({source})" for name, source in shown) or "none"
