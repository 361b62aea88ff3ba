"""Slack: `SlackIncomingWebhook` posts a message to an incoming webhook; `SlackExecution` posts an execution's
summary there (Kestra's slack-template: a title linking the execution, the outcome, and the facts as an
attachment coloured by the state)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from plugins.notifications.http import RequestOptions, json_payload, post_json
from plugins.notifications.summary import ExecutionFields, Summary
from runner.api import RunContext, TaskFailed
from runner.plugin import Task

__all__ = ["RequestOptions", "SlackExecution", "SlackIncomingWebhook"]


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
        response = post_json("Slack webhook", self.url, self._content(), self.options)
        ctx.logger.info(f"Slack message sent (HTTP {response.status_code})")
        return {}

    def _content(self) -> str:
        """The JSON document to post: `payload` as written, else `{"text": messageText}`."""
        if json_payload(self.payload, "Slack") is not None:
            assert self.payload is not None
            return self.payload
        if self.messageText:
            return json.dumps({"text": self.messageText})
        raise TaskFailed("set payload (a JSON Slack message) or messageText", permanent=True)


class SlackExecution(ExecutionFields, SlackIncomingWebhook):
    """Post a summary of an execution (its flow, state, duration, failed task, link) to a Slack webhook. As in
    Kestra, the summary replaces any `payload` written."""

    type_name: ClassVar[str] = "io.kestra.plugin.slack.notifications.SlackExecution"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.notifications.slack.SlackExecution",)

    channel: str | None = None
    """Channel to post to (deprecated by Slack for incoming webhooks; sent when set)."""
    username: str | None = None
    """Name the message is posted under (deprecated by Slack; sent when set)."""
    iconUrl: str | None = None
    """Icon image URL (deprecated by Slack; sent when set)."""
    iconEmoji: str | None = None
    """Icon emoji (deprecated by Slack; sent when set)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        summary = self.summary(ctx)
        document = slack_message(summary)
        for key, value in (
            ("channel", self.channel),
            ("username", self.username),
            ("icon_url", self.iconUrl),
            ("icon_emoji", self.iconEmoji),
        ):
            if value:
                document[key] = value
        response = post_json("Slack webhook", self.url, document, self.options)
        ctx.logger.info(f"Slack summary of execution {summary.execution.id} sent (HTTP {response.status_code})")
        return {}


COLORS = {"SUCCESS": "good", "WARNING": "warning"}


def slack_message(summary: Summary) -> dict[str, Any]:
    """A Slack message (text, blocks, attachments) summarising the execution."""
    link = summary.execution.link
    title = f"<{link}|{summary.title}>" if link else summary.title
    headline = f"*{title}*\n> {summary.outcome}"
    section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": headline}}
    if link:
        section["accessory"] = {"type": "button", "text": {"type": "plain_text", "text": "Details"}, "url": link}
    blocks: list[dict[str, Any]] = []
    if summary.custom_message:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": summary.custom_message}})
    blocks.append(section)
    attachment = {
        "color": COLORS.get(summary.execution.state, "danger"),
        "fields": [{"title": name, "value": value, "short": True} for name, value in summary.facts()],
        "ts": int(summary.started().timestamp()),
    }
    return {"text": headline, "blocks": blocks, "attachments": [attachment]}
