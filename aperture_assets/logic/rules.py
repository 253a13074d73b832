"""One user's `Rules` from what the server says they may open (their policy, the rating scale, each show's
copies) and what they and their admin do not want (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from aperture_assets.logic.recommend import Rules
from aperture_resources.media_server.access import AccessRules, SeriesCopy, first_allowed


def access_verdicts(rules: AccessRules, scale: Mapping[str, int], copies: Mapping[str, Sequence[SeriesCopy]],
                    shows: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """For each of `shows`: (show -> the rule refusing every copy, show -> the first copy the user may open).
    A show with no known copy is refused ("access"): nothing is offered that was not checked."""
    refused: dict[str, str] = {}
    allowed: dict[str, str] = {}
    for show in shows:
        copy, reason = first_allowed(rules, scale, copies.get(show, ()))
        if copy is not None:
            allowed[show] = copy.series_id
        else:
            refused[show] = reason or "access"
    return refused, allowed


def user_rules(verdicts: tuple[dict[str, str], dict[str, str]], disliked: Iterable[str],
               excluded_genres: Iterable[str], excluded_tags: Iterable[str]) -> Rules:
    refused, allowed = verdicts
    return Rules(refused=refused, copies=allowed, disliked=frozenset(disliked),
                 excluded_genres=frozenset(g.casefold() for g in excluded_genres),
                 excluded_tags=frozenset(t.casefold() for t in excluded_tags))
