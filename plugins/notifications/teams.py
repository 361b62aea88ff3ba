"""Microsoft Teams: `TeamsIncomingWebhook` posts a JSON card (a MessageCard, or a message with an Adaptive Card
attachment) to an incoming webhook; `TeamsExecution` posts an execution's summary as a MessageCard with its facts."""

from __future__ import annotations

from typing import Any, ClassVar

from plugins.notifications.http import RequestOptions, json_payload, post_json
from plugins.notifications.summary import ExecutionFields, Summary
from runner.api import RunContext, TaskFailed
from runner.plugin import Task


class TeamsIncomingWebhook(Task):
    """Send a message (JSON) to a Microsoft Teams incoming webhook URL."""

    type_name: ClassVar[str] = "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook"

    url: str
    """The webhook URL (a secret)."""
    payload: str | None = None
    """The JSON payload (a MessageCard, or an Adaptive Card message); rendered."""
    options: RequestOptions | None = None
    """HTTP client options."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        document = json_payload(self.payload, "Microsoft Teams webhook")
        if document is None:
            raise TaskFailed("payload is required (a JSON Teams message card)", permanent=True)
        self.post(ctx, document)
        return {}

    def post(self, ctx: RunContext, document: Any) -> None:
        response = post_json("Microsoft Teams webhook", self.url, document, self.options)
        ctx.logger.info(f"Microsoft Teams message sent (HTTP {response.status_code})")


class TeamsExecution(ExecutionFields, TeamsIncomingWebhook):
    """Send a summary of an execution (its flow, state, duration, failed task, link) to a Teams webhook."""

    type_name: ClassVar[str] = "io.kestra.plugin.notifications.teams.TeamsExecution"

    themeColor: str = "0076D7"
    """Colour of the card's edge (hex RGB)."""
    activityTitle: str | None = None
    """Title of the card's section."""
    activitySubtitle: str | None = None
    """Subtitle of the card's section."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self.post(ctx, self.card(self.summary(ctx)))
        return {}

    def card(self, summary: Summary) -> dict[str, Any]:
        link = summary.execution.link
        title = f"<{link}|{summary.title}>" if link else summary.title
        section: dict[str, Any] = {}
        if self.activityTitle is not None:
            section["activityTitle"] = self.activityTitle
        if self.activitySubtitle is not None:
            section["activitySubtitle"] = self.activitySubtitle
        if summary.custom_message:
            section["text"] = summary.custom_message
        section["facts"] = [{"name": name, "value": value} for name, value in summary.facts()]
        section["markdown"] = True
        card: dict[str, Any] = {
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "themeColor": self.themeColor,
            "summary": f"*{title}*\n> {summary.outcome}",
            "sections": [section],
        }
        if link:
            card["potentialAction"] = [
                {"@type": "OpenUri", "name": "Details", "targets": [{"os": "default", "uri": link}]}
            ]
        return card
