"""One POST of a notification to a provider's HTTP API, and what its refusal means in words.

Every provider task posts JSON and reads the answer the same way: a 2xx is sent; a 429 says when to try again
(`Retry-After`, or the provider's own `retry_after`) and may pass on a later attempt; another 4xx is permanent
(the task's `retry` does not run it again); a 5xx or a network error may pass later. The error names the provider
and the reason its body gives (SendGrid's `errors[].message`, Discord's `message`, Telegram's `description`,
Google's `error.message`, or the text), never the URL, which often holds the credential itself.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from plugins.core._props import as_map, as_seconds, mask
from plugins.values import Options, StrMap
from runner.api import TaskFailed
from runner.types import Dyn, DynDuration

if TYPE_CHECKING:
    import httpx

REASON_CHARS = 300
"""How much of a refusal's text the error quotes."""


class RequestOptions(Options):
    """HTTP client options of notification tasks (Kestra's `options`)."""

    connectTimeout: DynDuration | None = None
    """How long to wait for the connection (default 30 s)."""
    readTimeout: DynDuration | None = None
    """How long to wait for the answer (default 60 s)."""
    connectionPoolIdleTimeout: DynDuration | None = None
    """Accepted for Kestra compatibility; each post opens its own connection."""
    maxContentLength: Dyn[int] | None = None
    """Accepted for Kestra compatibility."""
    defaultCharset: str | None = None
    """Accepted for Kestra compatibility; bodies are UTF-8."""
    headers: StrMap | None = None
    """Extra request headers."""


def post_json(
    provider: str,
    url: str,
    document: Any,
    options: RequestOptions | None,
    *,
    headers: dict[str, str] | None = None,
    secrets: tuple[str | None, ...] = (),
) -> httpx.Response:
    """POST `document` (JSON data, or JSON text sent as written) to `url`; the response when it is a 2xx, else
    TaskFailed saying why in the provider's words. `secrets` (and the URL) are masked in every message."""
    import httpx  # when the task runs: validating a flow needs no HTTP client

    options = options or RequestOptions()
    sent = {str(k): str(v) for k, v in as_map(options.headers, "options.headers").items()}
    sent.update(headers or {})
    sent.setdefault("Content-Type", "application/json")
    body = document if isinstance(document, str) else json.dumps(document, ensure_ascii=False)
    hidden = (url, *secrets)
    try:
        with httpx.Client(timeout=timeout(options), trust_env=False) as client:
            response = client.post(url, content=body.encode("utf-8"), headers=sent)
    except httpx.InvalidURL as exc:
        raise TaskFailed(f"{provider}: the URL is not valid ({mask(str(exc), *hidden)})", permanent=True) from None
    except httpx.HTTPError as exc:
        reason = mask(str(exc) or type(exc).__name__, *hidden)
        permanent = isinstance(exc, httpx.ConnectError) and "refused" in reason.lower()
        raise TaskFailed(f"{provider} could not be reached (URL hidden): {reason}", permanent=permanent) from None
    if response.is_success:
        return response
    raise refusal(provider, response, hidden)


def refusal(provider: str, response: httpx.Response, secrets: tuple[str | None, ...]) -> TaskFailed:
    """The TaskFailed of a non-2xx answer: its status, the provider's reason, and for a 429 when to try again."""
    status = response.status_code
    reason = mask(provider_reason(response), *secrets)
    if status == 429:
        wait = retry_after(response)
        after = f"; it asks to wait {wait} s before trying again" if wait else ""
        return TaskFailed(f"{provider} is rate limiting (HTTP 429): {reason.rstrip('.') if after else reason}{after}")
    if status in (401, 403):
        what = "the credential was refused"
        return TaskFailed(f"{provider} answered HTTP {status}, {what}: {reason}", permanent=True)
    permanent = 400 <= status < 500 and status != 408
    return TaskFailed(f"{provider} answered HTTP {status}: {reason}", permanent=permanent)


def provider_reason(response: httpx.Response) -> str:
    """The reason a provider's error body gives, in the shapes their API documentation shows."""
    text = response.text
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:REASON_CHARS] or response.reason_phrase
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:  # SendGrid v3
            parts = []
            for error in errors:
                if isinstance(error, dict):
                    field = error.get("field")
                    message = str(error.get("message") or "")
                    parts.append(f"{message} (field {field})" if field else message)
            if parts:
                return "; ".join(parts)[:REASON_CHARS]
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):  # Google APIs
            status = f" [{error['status']}]" if error.get("status") else ""
            return f"{error['message']}{status}"[:REASON_CHARS]
        for key in ("description", "message", "error"):  # Telegram, Discord, others
            if isinstance(data.get(key), str) and data[key]:
                return str(data[key])[:REASON_CHARS]
    return text.strip()[:REASON_CHARS]


def retry_after(response: httpx.Response) -> str | None:
    """Seconds to wait, from the `Retry-After` header or the body's `retry_after` (Discord, Telegram)."""
    header = response.headers.get("Retry-After")
    if header and header.strip():
        return header.strip()
    try:
        data = json.loads(response.text)
    except ValueError:
        return None
    if isinstance(data, dict):
        for holder in (data, data.get("parameters")):
            if isinstance(holder, dict) and isinstance(holder.get("retry_after"), int | float):
                return f"{holder['retry_after']:g}"
    return None


def timeout(options: RequestOptions) -> httpx.Timeout:
    import httpx

    connect = as_seconds(options.connectTimeout, "options.connectTimeout") or 30.0
    read = as_seconds(options.readTimeout, "options.readTimeout") or 60.0
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


def json_payload(payload: str | None, provider: str) -> Any:
    """A written `payload` as JSON data; TaskFailed (permanent) saying where it is not JSON."""
    if payload is None or not payload.strip():
        return None
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise TaskFailed(f"{provider}: payload is not valid JSON: {exc}", permanent=True) from None
