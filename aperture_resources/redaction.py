"""The one place secrets are cut out of text that may reach a log, an event or an error.

Servers echo what they were sent (a rejected `Authorization` header, a URL with `api_key=`), and whatever
an exception says lands in Dagster's event log, the compute logs and stderr. So the process keeps one set of
secrets (the media-server and AI keys and the database password, registered when the resources are built), and
`redact` cuts them, plus any the caller names, out of every message built from a server's answer, every log
line and event a stage emits (`wiring/log_redaction.py`) and every error the CLI prints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "***"
_registered: set[str] = set()


def register(*secrets: str | None) -> None:
    """Add secrets this process holds to the set `redact` always cuts (empty values are ignored)."""
    _registered.update(secret for secret in secrets if secret)


def registered() -> frozenset[str]:
    return frozenset(_registered)


def url_password(url: str) -> str | None:
    """The password in a database URL (`postgresql://user:password@host/db`), if it carries one."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def _forms(secret: str) -> set[str]:
    """The spellings a server may echo a secret in: as sent, URL-quoted (path or form style) and JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret, safe=""), json.dumps(secret)[1:-1]}


@lru_cache(maxsize=32)
def _pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    forms = {form for secret in secrets for form in _forms(secret)}
    if not forms:
        return None
    return re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)), re.IGNORECASE)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every registered secret and every non-empty one of `secrets`, in any of its echoed
    spellings, replaced by "***".

    Matching ignores case (percent-escapes come in either case); masking a look-alike too is the safe side.
    Cut a message to length only after redacting it, or a secret cut in half survives."""
    pattern = _pattern(frozenset(_registered.union(secret for secret in secrets if secret)))
    return pattern.sub(MASK, text) if pattern is not None and text else text
