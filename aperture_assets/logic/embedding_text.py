"""The text embedded for a series (spec "What Gets Embedded": title and year, overview, genres,
keywords, network). Stable field order and formatting, so the text hash changes only when the
metadata does; capped so one verbose overview can't crowd out the rest."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

MAX_CHARS = 1200
MAX_TAGS = 12


def _years(year: int | None, end_year: int | None, status: str | None) -> str:
    if not year:
        return ""
    if end_year and end_year != year:
        return f" ({year}-{end_year})"
    if (status or "").casefold() == "continuing":
        return f" ({year}-)"
    return f" ({year})"


def _clip(text: str, limit: int) -> str:
    """Cut at a sentence end (or word boundary) no later than `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = cut.rfind(". ")
    if end > limit // 2:
        return cut[: end + 1]
    return cut.rsplit(" ", 1)[0] + "..."


def series_text(
    name: str,
    year: int | None,
    end_year: int | None,
    status: str | None,
    overview: str | None,
    genres: Sequence[str],
    tags: Sequence[str],
    network: str | None,
) -> str:
    lines = [f"{' '.join(name.split())}{_years(year, end_year, status)}"]
    if genres:
        lines.append("Genres: " + ", ".join(genres))
    if network:
        lines.append(f"Network: {network}")
    if tags:
        lines.append("Keywords: " + ", ".join(list(tags)[:MAX_TAGS]))
    head = "\n".join(lines)
    if overview and overview.strip():
        head += "\n" + _clip(overview, max(0, MAX_CHARS - len(head) - 1))
    return head[:MAX_CHARS]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
