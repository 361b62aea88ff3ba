"""Google Chat: `GoogleChatIncomingWebhook` posts a message (text, cards) to a space's incoming webhook
(`POST https://chat.googleapis.com/v1/spaces/…/messages?key=…&token=…`); `GoogleChatExecution` posts an
execution's summary as text."""

from __future__ import annotations

from typing import Any, ClassVar

from plugins.notifications.http import RequestOptions, json_payload, post_json
from plugins.notifications.summary import ExecutionFields, Summary
from runner.api import RunContext, TaskFailed
from runner.plugin import Task


class GoogleChatIncomingWebhook(Task):
    """Send a message (JSON: `text`, `cardsV2`…) to a Google Chat incoming webhook URL."""

    type_name: ClassVar[str] = "io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook"

    url: str
    """The webhook URL (a secret: it holds the key and token)."""
    payload: str | None = None
    """The JSON payload (a Google Chat message); rendered."""
    options: RequestOptions | None = None
    """HTTP client options."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        document = json_payload(self.payload, "Google Chat webhook")
        if document is None:
            raise TaskFailed("payload is required (a JSON Google Chat message)", permanent=True)
        self.post(ctx, document)
        return {}

    def post(self, ctx: RunContext, document: Any) -> None:
        response = post_json("Google Chat webhook", self.url, document, self.options)
        ctx.logger.info(f"Google Chat message sent (HTTP {response.status_code})")


class GoogleChatExecution(ExecutionFields, GoogleChatIncomingWebhook):
    """Send a summary of an execution (its flow, state, duration, failed task, link) to a Google Chat space."""

    type_name: ClassVar[str] = "io.kestra.plugin.notifications.google.GoogleChatExecution"

    text: str | None = None
    """Text sent instead of the summary's."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        summary = self.summary(ctx)
        self.post(ctx, {"text": self.text if self.text is not None else chat_text(summary)})
        return {}


def chat_text(summary: Summary) -> str:
    facts = ", ".join(f"{name} {value}" for name, value in summary.facts())
    link = summary.execution.link
    title = f"<{link}|{summary.title}>" if link else summary.title
    custom = f"{summary.custom_message}\n" if summary.custom_message else ""
    return f"{custom}Kestra Google notification: {facts}. *{title}*\n> {summary.outcome}"
