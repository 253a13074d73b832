"""One- or two-sentence explanations for picks: asked of the chat model in one batched request,
grounded in each pick's evidence, with a template sentence whenever the model fails or says nothing
usable. Never raises: an explanation is a nicety, not a reason to fail a run."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

from aperture_assets.logic.recommend import Pick

MAX_CHARS = 300
NEGATIVE_SIGNALS = ("disliked", "dropped")
LIKE_YOU = 1 / 3  # when co-watching gives at least this share of a pick's score, it is worth saying


def taste_evidence(evidence: Sequence[dict]) -> list[dict]:
    """The evidence entries that are shows the user liked (not the disliked or dropped ones pulling down)."""
    return [e for e in evidence if e.get("signal") not in NEGATIVE_SIGNALS]


def template(pick: Pick) -> str:
    """One short line of why, from the stored evidence alone: the shows behind it and whether viewers like
    this user watched it ("Because you watched The Wire and Ozark; popular with viewers like you")."""
    names = [e["name"] for e in taste_evidence(pick.evidence)[:2]]
    like_you = pick.score > 0 and pick.components.get("collaborative", 0.0) >= LIKE_YOU * pick.score
    if not names:
        return "Popular with viewers like you." if like_you else "Popular and well rated on this server."
    because = names[0] if len(names) == 1 else f"{names[0]} and {names[1]}"
    return f"Because you watched {because}" + ("; popular with viewers like you." if like_you else ".")


def prompt(picks: Sequence[Pick]) -> list[dict]:
    """Chat messages asking for a JSON list with one explanation per pick, in order."""
    lines = []
    for i, pick in enumerate(picks, start=1):
        evidence = ", ".join(f"{e['name']} (similarity {e['similarity']})"
                             for e in taste_evidence(pick.evidence)) or "none"
        lines.append(f"{i}. {pick.name} - similar to what they watched: {evidence}")
    return [
        {"role": "system", "content": "You explain TV recommendations in one or two short sentences each. "
                                      "Only mention the watched shows given. Answer with a JSON array of strings."},
        {"role": "user", "content": "Explain each pick for this viewer:\n" + "\n".join(lines)},
    ]


def parse(reply: str, count: int) -> list[str | None]:
    """The model's JSON array (possibly inside prose or a code fence) as `count` cleaned sentences."""
    match = re.search(r"\[.*\]", reply or "", re.DOTALL)
    try:
        values = json.loads(match.group(0)) if match else []
    except ValueError:
        values = []
    out: list[str | None] = []
    for i in range(count):
        value = values[i] if i < len(values) else None
        text = " ".join(value.split()) if isinstance(value, str) else ""
        out.append(text[:MAX_CHARS] if text else None)
    return out


def explain(picks: Sequence[Pick], chat: Callable[[list[dict]], str] | None) -> tuple[list[str], int]:
    """(explanations in pick order, how many came from the template)."""
    answers: list[str | None] = [None] * len(picks)
    if chat is not None and picks:
        try:
            answers = parse(chat(prompt(picks)), len(picks))
        except Exception:  # any provider failure falls back to the template
            answers = [None] * len(picks)
    texts = [answer or template(pick) for answer, pick in zip(answers, picks, strict=True)]
    return texts, sum(1 for a in answers if not a)
