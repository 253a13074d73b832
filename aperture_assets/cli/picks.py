"""`aperture users` and `aperture picks NAME`: who aperture knows, and what one user's picks are and why, by name,
from what the stages stored (no media-server request)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import pairwise

from aperture_assets.logic.explanations import NEGATIVE_SIGNALS
from aperture_resources.report_store import FullPick, UserState, latest_picks, user_states
from aperture_resources.settings import load_settings, split_list


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M %Z}" if moment else "never"


def is_enabled(user: UserState, wanted: Sequence[str]) -> bool:
    """Gets picks: not disabled, still listed by the server, and named in APERTURE_USERS when that is set."""
    chosen = {w.casefold() for w in wanted}
    return not (user.disabled or user.removed) and (
        not chosen or user.id.casefold() in chosen or user.name.casefold() in chosen)


def users_table(users: Sequence[UserState], wanted: Sequence[str]) -> list[str]:
    lines = ["| Name | Id | Partition | Enabled | History changed | Picks | Picks made |", "|---" * 7 + "|"]
    for u in users:
        enabled = "yes" if is_enabled(u, wanted) else "disabled" if u.disabled else "gone" if u.removed else "no"
        lines.append(f"| {u.name} | {u.id} | {u.partition_key or ''} | {enabled} | {_when(u.history_synced_at)} "
                     f"| {u.picks} | {_when(u.picks_at)} |")
    return lines


ORDER = ("content", "collaborative", "popularity", "rating", "negative")


def components_text(components: dict) -> str:
    """The score's parts in a fixed order (any others after), and how alike the picks above it were."""
    names = [n for n in ORDER if n in components] + sorted(set(components) - set(ORDER) - {"mmr_similarity"})
    parts = [f"{name} {components[name]:.3f}" for name in names if isinstance(components[name], int | float)]
    if isinstance(components.get("mmr_similarity"), int | float):
        parts.append(f"likeness to the picks above {components['mmr_similarity']:.2f}")
    return ", ".join(parts)


def evidence_text(evidence: Sequence[dict]) -> list[str]:
    """The shows behind a pick, in words: what the user watched that it is like, what viewers of the user's
    shows also watched, and what pulled it down."""
    named = [e for e in evidence if e.get("name")]
    liked = [e for e in named if e.get("signal") not in NEGATIVE_SIGNALS]
    like = [e for e in liked if "content" in str(e.get("source", "content"))]
    co_watched = [e for e in liked if "collaborative" in str(e.get("source", ""))]
    against = [e for e in named if e.get("signal") in NEGATIVE_SIGNALS]
    lines = []
    if like:
        lines.append("because you watched " + ", ".join(
            f"{e['name']}" + (f" ({e['similarity']:.2f})" if isinstance(e.get("similarity"), int | float) else "")
            + (f" [{e['signal']}]" if e.get("signal") else "") for e in like))
    if co_watched:
        lines.append("viewers who watched " + ", ".join(e["name"] for e in co_watched) + " also watched it")
    if against:
        lines.append("held back by " + ", ".join(f"{e['name']} ({e['signal']})" for e in against))
    return lines


def reordered_for_variety(picks: Sequence[FullPick]) -> bool:
    """Whether some pick ranks above one with a higher score: MMR traded score for variety."""
    return any(a.score < b.score for a, b in pairwise(picks))


def picks_lines(name: str, picks: Sequence[FullPick], why: bool) -> list[str]:
    if not picks:
        return [f"{name} has no picks yet (they come with the next recommendations run: `aperture run`)."]
    first = picks[0]
    lines = [f"{name}: {len(picks)} picks, computed {_when(first.created_at)}"
             + (" (cold start: no watch history yet, popular and well-rated shows)" if first.cold_start else "")]
    for p in picks:
        lines.append(f"{p.rank:>3}. {p.name}{f' ({p.year})' if p.year else ''}  score {p.score:.3f}")
        if why:
            lines.append(f"       {components_text(p.components)}")
            lines += [f"       {line}" for line in evidence_text(p.evidence)]
            if p.explanation:
                lines.append(f"       \"{p.explanation}\"")
    if reordered_for_variety(picks):
        lines.append("Ranks are ordered for variety as well as score (MMR): a pick can sit above one that scores "
                     "higher when it is less like the picks above it.")
    return lines


def picks_json(user: UserState, picks: Sequence[FullPick]) -> str:
    return json.dumps({"user": user.name, "id": user.id, "partition": user.partition_key,
                       "computed_at": picks[0].created_at.isoformat() if picks else None,
                       "cold_start": bool(picks and picks[0].cold_start),
                       "picks": [{"rank": p.rank, "series_id": p.series_id, "name": p.name, "year": p.year,
                                  "score": p.score, "components": p.components, "evidence": p.evidence,
                                  "explanation": p.explanation} for p in picks]}, indent=2)


def _connect():
    from aperture_assets.cli.environment import prepare_environment
    from aperture_resources.database import DatabaseResource

    settings = load_settings()
    env = prepare_environment(settings)
    return settings, DatabaseResource(url=env["APERTURE_DATABASE_URL"]).connect()


def users(args: argparse.Namespace, echo: Callable[[str], None] = print) -> int:
    settings, connection = _connect()
    with connection as conn:
        listed = user_states(conn)
    if not listed:
        echo("no users synced yet: `aperture run` reads them from the media server")
        return 0
    for line in users_table(listed, split_list(settings.users)):
        echo(line)
    return 0


def picks(args: argparse.Namespace, echo: Callable[[str], None] = print) -> int:
    from aperture_assets.cli.user import find_user

    _, connection = _connect()
    with connection as conn:
        person = find_user(conn, args.name)
        state = next(u for u in user_states(conn) if u.id == person.id)
        chosen = latest_picks(conn, person.id)
    for line in [picks_json(state, chosen)] if args.json else picks_lines(person.name, chosen, args.why):
        echo(line)
    return 0


def add_arguments(sub: argparse._SubParsersAction) -> None:
    listing = sub.add_parser("users", help="list the media server's users: partition key, enabled, last history "
                             "sync and picks", description="Every user aperture has read from the media server.")
    listing.set_defaults(func=users)
    shown = sub.add_parser("picks", help="a user's current picks in rank order",
                           description="A user's current picks in rank order, when they were computed, and with "
                           "--why the score components and the shows behind each pick.")
    shown.add_argument("name", metavar="NAME", help="the user's name (any case), partition key or id")
    shown.add_argument("--why", action="store_true", help="also print score components and evidence per pick")
    shown.add_argument("--json", action="store_true", help="print the picks as JSON (all fields)")
    shown.set_defaults(func=picks)
