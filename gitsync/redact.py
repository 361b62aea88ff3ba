"""Keep credentials out of messages and logs.

Flux's source-controller strips query strings from URLs before they reach events (`internal/error/sanitized.go`);
we also drop `user:token@` userinfo, since that is how clone URLs usually carry a token, and mask known secret
values wherever they appear (a server may echo a URL back in its error text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

MASK = "***"

# Query parameters that carry credentials in the wild (GitLab `private_token`, pre-signed URLs, OAuth).
_SECRET_PARAMS = re.compile(
    r"token|secret|password|passwd|pwd|key|auth|sig|signature|credential|code|session", re.IGNORECASE
)
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """`url` without credentials: userinfo becomes `***`, secret-looking query values become `***`.

    `https://user:secret@host/x.git` -> `https://***@host/x.git`; `https://h/x?private_token=t` ->
    `https://h/x?private_token=***`. Text that is not a URL with a scheme (a local path, `git@host:x`) is returned
    unchanged: scp-like SSH addresses carry a user name, never a password.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if _SECRET_PARAMS.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every URL redacted (as `redact_url`) and every non-empty secret value replaced by `***`.

    A secret's percent-encoded form (as it appears inside a URL) is masked too. Longer secrets are masked first,
    so a secret that contains another is not half-revealed.
    """
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    values = {s for s in secrets if s}
    values |= {quote(s, safe="") for s in values}
    for secret in sorted(values, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
