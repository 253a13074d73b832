"""Close names for a typo, whatever the case: what a "did you mean" sentence offers (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_names(value: str, names: Iterable[str], cutoff: float = 0.5) -> list[str]:
    """Up to three of `names` (in their own spelling) close to `value`, compared case-insensitively."""
    spelled: dict[str, str] = {}
    for name in names:
        if name.strip():
            spelled.setdefault(name.strip().casefold(), name.strip())
    return [spelled[k] for k in difflib.get_close_matches(value.strip().casefold(), list(spelled), n=3,
                                                          cutoff=cutoff)]
