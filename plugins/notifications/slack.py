"""`SlackIncomingWebhook`: post a message to a Slack incoming webhook."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from plugins.core._props import as_map, as_seconds, mask
from plugins.values import Options, StrMap
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn, DynDuration

if TYPE_CHECKING:
    import httpx


class RequestOptions(Options):
    """HTTP client options of notification tasks."""

    connectTimeout: DynDuration | None = None
    readTimeout: DynDuration | None = None
    connectionPoolIdleTimeout: DynDuration | None = None
    maxContentLength: Dyn[int] | None = None
    defaultCharset: str | None = None
    headers: StrMap | None = None


class SlackIncomingWebhook(Task):
    """Send a message (`messageText`) or a full Slack payload (`payload`, JSON) to a webhook URL."""

    type_name: ClassVar[str] = "io.kestra.plugin.slack.notifications.SlackIncomingWebhook"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.notifications.slack.SlackIncomingWebhook",)

    url: str
    """The webhook URL (a secret)."""
    payload: str | None = None
    """The JSON payload; rendered."""
    messageText: str | None = None
    """Plain text message, used when no payload is given."""
    options: RequestOptions | None = None
    """HTTP client options."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        import httpx  # when the task runs: validating a flow needs no HTTP client

        content = self._content()
        options = self.options or RequestOptions()
        headers = {str(k): str(v) for k, v in as_map(options.headers, "options.headers").items()}
        headers.setdefault("Content-Type", "application/json")
        try:
            with httpx.Client(timeout=webhook_timeout(options), trust_env=False) as client:
                response = client.post(self.url, content=content.encode("utf-8"), headers=headers)
        except httpx.HTTPError as exc:
            reason = mask(str(exc) or type(exc).__name__, self.url)
            raise TaskFailed(f"Slack webhook (URL hidden) could not be reached: {reason}") from None
        if not response.is_success:
            body = mask(response.text[:200], self.url)
            raise TaskFailed(f"Slack webhook (URL hidden) answered HTTP {response.status_code}: {body}")
        ctx.logger.info(f"Slack message sent (HTTP {response.status_code})")
        return {}

    def _content(self) -> str:
        """The JSON document to post: `payload` as written, else `{"text": messageText}`."""
        if self.payload is not None and self.payload.strip():
            try:
                json.loads(self.payload)
            except ValueError as exc:
                raise TaskFailed(f"payload is not valid JSON: {exc}") from None
            return self.payload
        if self.messageText:
            return json.dumps({"text": self.messageText})
        raise TaskFailed("set payload (a JSON Slack message) or messageText")


def webhook_timeout(options: RequestOptions) -> httpx.Timeout:
    import httpx

    connect = as_seconds(options.connectTimeout, "options.connectTimeout") or 30.0
    read = as_seconds(options.readTimeout, "options.readTimeout") or 60.0
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
