"""`SlackIncomingWebhook`: post a message to a Slack incoming webhook."""

from __future__ import annotations

from typing import ClassVar

from plugins.values import Options, StrMap
from runner.plugin import Task
from runner.types import Dyn, DynDuration


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
