"""The one place secrets are cut out of text that may reach a log, an event or an error.

Servers echo what they were sent (a rejected `Authorization` header, a URL with `api_key=`), and whatever
an exception says lands in Dagster's event log, the compute logs and stderr. So every message built from a
server's answer goes through `redact` before it is raised, with the secrets the caller holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"


def _forms(secret: str) -> set[str]:
    """The spellings a server may echo a secret in: as sent, URL-quoted (path or form style) and JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret, safe=""), json.dumps(secret)[1:-1]}


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-empty secret, in any of its echoed spellings, replaced by "***".

    Matching ignores case (percent-escapes come in either case); masking a look-alike too is the safe side.
    Cut a message to length only after redacting it, or a secret cut in half survives."""
    forms = {form for secret in secrets if secret for form in _forms(secret)}
    if not forms or not text:
        return text
    pattern = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.sub(pattern, MASK, text, flags=re.IGNORECASE)
