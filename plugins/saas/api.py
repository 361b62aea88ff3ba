"""One JSON call to a SaaS provider's REST API, its refusals in the provider's own words, secrets masked.

Every SaaS job task (Fivetran, Airbyte, dbt Cloud, OpenAI) talks to its provider through `JsonApi`: the auth header
is set once, each call is one request whose answer must be JSON, and what goes wrong becomes a `TaskFailed` that
names the provider, the call and the reason the provider gave (`reason` reads it from the provider's error body),
with every secret (token, key, password) masked. Rate limits (429) and the gateway errors 502/503/504 are tried
again a bounded number of times, waiting what `Retry-After` asks (capped) or a doubling delay; a 4xx other than
408 and 429 is permanent (`TaskFailed.permanent`), so the task's `retry` does not repeat it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plugins.core._props import mask
from plugins.core.http import HttpOptions, client_settings, permanent_transport_error
from runner.api import TaskFailed, TaskKilled

if TYPE_CHECKING:
    import httpx

Reason = Callable[[Any], str | None]
"""Reads the provider's message out of a decoded error body (None when it holds none)."""

RETRIED = frozenset({429, 502, 503, 504})
MAX_RETRY_WAIT = 30.0
"""The longest wait between two attempts, whatever `Retry-After` asks."""
MAX_ERROR_TEXT = 300


@dataclass
class JsonApi:
    """A provider's API at `base_url`: `call(method, path, body)` returns the decoded JSON answer."""

    provider: str
    """The provider's name as users know it (`Fivetran`, `dbt Cloud`), first word of every error."""
    base_url: str
    headers: dict[str, str]
    secrets: list[str]
    reason: Reason
    options: HttpOptions | None = None
    attempts: int = 3
    """Attempts of one call when the provider answers 429/502/503/504 (Kestra's `maxAttempts`)."""
    first_delay: float = 1.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    on_retry: Callable[[str], None] | None = None
    """Told (a message) each time a call is tried again."""

    def call(self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None) -> Any:
        """The decoded JSON answer of a 2xx; TaskFailed with the provider's reason otherwise."""
        import httpx  # when the task runs: validating a flow needs no HTTP client

        url = self.base_url.rstrip("/") + path
        shown = f"{method} {self.hide(path)}"
        content = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json", **self.headers}
        if content is not None:
            headers["Content-Type"] = "application/json"
        delay = self.first_delay
        attempt = 1
        with httpx.Client(**client_settings(self.options or HttpOptions(), None)) as client:
            while True:
                response = self._send(client, method, url, content, headers, params, shown)
                if response.is_success:
                    return self._decode(response, shown)
                if response.status_code in RETRIED and attempt < max(self.attempts, 1):
                    wait = _retry_after(response, delay)
                    if self.on_retry is not None:
                        self.on_retry(
                            f"{self.provider} answered HTTP {response.status_code} to {shown}; trying again in "
                            f"{wait:g} s (attempt {attempt + 1} of {self.attempts})"
                        )
                    if self.cancelled.wait(wait):
                        raise TaskKilled(f"stopped while waiting to call {self.provider} again")
                    delay = min(delay * 2, MAX_RETRY_WAIT)
                    attempt += 1
                    continue
                raise self.refusal(response, shown)

    def hide(self, text: str) -> str:
        return mask(text, *self.secrets)

    def _send(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        params: dict[str, str] | None,
        shown: str,
    ) -> httpx.Response:
        import httpx

        try:
            return client.request(method, url, content=content, headers=headers, params=params)
        except httpx.TimeoutException as exc:
            raise TaskFailed(f"{self.provider} did not answer {shown} in time: {self.hide(str(exc))}") from None
        except httpx.HTTPError as exc:
            reason = self.hide(str(exc) or type(exc).__name__)
            where = self.hide(self.base_url)
            raise TaskFailed(
                f"{self.provider} could not be reached at {where} ({shown}): {reason}",
                permanent=permanent_transport_error(exc),
            ) from None

    def _decode(self, response: httpx.Response, shown: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            text = self.hide(response.text[:MAX_ERROR_TEXT])
            raise TaskFailed(f"{self.provider} answered {shown} with something that is not JSON: {text!r}") from None

    def refusal(self, response: httpx.Response, shown: str) -> TaskFailed:
        """The TaskFailed for a refused call: the provider's reason, what the code means, secrets masked."""
        code = response.status_code
        try:
            said = self.reason(response.json())
        except ValueError:
            said = None
        said = said or response.text.strip()[:MAX_ERROR_TEXT] or response.reason_phrase
        meaning = MEANINGS.get(code, "")
        text = f"{self.provider} refused {shown} (HTTP {code}{meaning}): {said}"
        permanent = 400 <= code < 500 and code not in (408, 429)
        return TaskFailed(self.hide(text), permanent=permanent)


MEANINGS = {
    401: ", the credentials were not accepted",
    403: ", the credentials may not do this",
    404: ", not found",
    409: ", a conflict",
    429: ", too many requests: rate limited",
}


def _retry_after(response: httpx.Response, fallback: float) -> float:
    """Seconds the provider asks to wait (`Retry-After` in seconds), else `fallback`; never over the cap."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        wait = float(value) if value else fallback
    except ValueError:
        wait = fallback
    return max(0.0, min(wait, MAX_RETRY_WAIT))


def first_text(body: Any, *paths: tuple[str, ...]) -> str | None:
    """The first non-empty string found at one of `paths` (keys into nested maps) of a decoded body."""
    for path in paths:
        node = body
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node.strip():
            return node.strip()
    return None
