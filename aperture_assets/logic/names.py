"""Names people type and read: close names for a typo (what a "did you mean" sentence offers), and user
partition keys (pure)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


def close_names(value: str, names: Iterable[str], cutoff: float = 0.5) -> list[str]:
    """Up to three of `names` (in their own spelling) close to `value`, compared case-insensitively."""
    spelled: dict[str, str] = {}
    for name in names:
        if name.strip():
            spelled.setdefault(name.strip().casefold(), name.strip())
    return [spelled[k] for k in difflib.get_close_matches(value.strip().casefold(), list(spelled), n=3,
                                                          cutoff=cutoff)]


def partition_key(name: str, user_id: str, taken: Iterable[str]) -> str:
    """A Dagster partition key an admin recognises: the user's name, made safe for Dagster (no "...", control
    characters, commas or brackets) and at most 40 characters; suffixed with the id's first 8 characters, or the
    whole id, when another user holds it (compared case-insensitively)."""
    taken = {t.casefold() for t in taken}
    base = re.sub(r"\.{2,}", ".", re.sub(r"[^\w .@+-]+", "-", name.strip()))[:40].strip(" -.") or "user"
    for key in (base, f"{base}-{user_id[:8]}", f"{base}-{user_id}"):
        if key.casefold() not in taken:
            return key
    raise ValueError(f"user id {user_id!r} is not unique")
