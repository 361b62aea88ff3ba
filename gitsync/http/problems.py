"""Errors of the HTTP API as problem details (RFC 9457): `application/problem+json` bodies.

Every refusal, whatever refused it (the Host check, the body reader, a handler), says the same four things:
`type` (`about:blank`: the HTTP status says what kind of problem it is, RFC 9457 §4.2.1), `title` (that status's
phrase), `status` and `detail`, the sentence for the person who sent the request. The detail never holds a
secret: every caller words it from what it checked, not from what it was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from starlette.responses import JSONResponse

MEDIA_TYPE = "application/problem+json"


def problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A problem details response for `status`, with `detail` saying what was wrong and what to do."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=MEDIA_TYPE)
