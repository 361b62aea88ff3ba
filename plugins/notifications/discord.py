"""Discord: `DiscordIncomingWebhook` executes a webhook (`POST /api/webhooks/{id}/{token}`) with a JSON payload;
`DiscordExecution` sends an execution's summary as an embed, with the author's username, avatar, content and
embeds (`embedList`)."""

from __future__ import annotations

from typing import Any, ClassVar

from plugins.notifications.http import RequestOptions, json_payload, post_json
from plugins.notifications.summary import ExecutionFields, Summary
from plugins.values import Options
from runner.api import RunContext, TaskFailed
from runner.plugin import Task


class DiscordIncomingWebhook(Task):
    """Send a message (a Discord webhook payload: content, username, embeds…) to a Discord webhook URL."""

    type_name: ClassVar[str] = "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook"

    url: str
    """The webhook URL (a secret: it holds the webhook's token)."""
    payload: str | None = None
    """The JSON payload (Discord's execute-webhook body); rendered."""
    options: RequestOptions | None = None
    """HTTP client options."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        document = json_payload(self.payload, "Discord webhook")
        if document is None:
            raise TaskFailed("payload is required (a JSON Discord webhook message)", permanent=True)
        self.post(ctx, document)
        return {}

    def post(self, ctx: RunContext, document: Any) -> None:
        response = post_json("Discord webhook", self.url, document, self.options)
        ctx.logger.info(f"Discord message sent (HTTP {response.status_code})")


class Embed(Options):
    """One Discord embed."""

    title: str | None = None
    """Title of the embed."""
    websiteUrl: str | None = None
    """URL the title links to."""
    description: str | None = None
    """Text of the embed."""
    thumbnail: str | None = None
    """Thumbnail image URL."""
    authorName: str | None = None
    """Author shown above the title."""
    color: list[int] | None = None
    """RGB colour, as three numbers 0-255."""
    footer: str | None = None
    """Footer text."""

    def document(self, avatar_url: str | None) -> dict[str, Any]:
        embed: dict[str, Any] = {}
        for key, value in (("title", self.title), ("description", self.description), ("url", self.websiteUrl)):
            if value is not None:
                embed[key] = value
        if self.thumbnail is not None:
            embed["thumbnail"] = {"url": self.thumbnail}
        if self.authorName is not None:
            embed["author"] = {"name": self.authorName, "url": self.websiteUrl, "icon_url": avatar_url}
        if self.color is not None:
            if len(self.color) < 3 or any(not 0 <= c <= 255 for c in self.color[:3]):
                raise TaskFailed(f"embedList color must be three numbers 0-255 (red, green, blue), got {self.color}")
            red, green, blue = self.color[:3]
            embed["color"] = (red << 16) + (green << 8) + blue
        if self.footer is not None:
            embed["footer"] = {"text": self.footer}
        return embed


class DiscordExecution(ExecutionFields, DiscordIncomingWebhook):
    """Send a summary of an execution (its flow, state, duration, failed task, link) to a Discord webhook."""

    type_name: ClassVar[str] = "io.kestra.plugin.notifications.discord.DiscordExecution"

    username: str | None = None
    """Name the message is posted under (the webhook's own name by default)."""
    avatarUrl: str | None = None
    """Avatar image URL of the message."""
    embedList: list[Embed] | None = None
    """Embeds sent with the message; the first one also carries the summary."""
    content: str | None = None
    """Text of the message, above the embeds."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        written = json_payload(self.payload, "Discord webhook")
        if written is not None:  # as Kestra's template task: a payload is sent as written
            self.post(ctx, written)
            return {}
        self.post(ctx, self.message(self.summary(ctx)))
        return {}

    def message(self, summary: Summary) -> dict[str, Any]:
        document: dict[str, Any] = {"tts": False}
        if self.username is not None:
            document["username"] = self.username
        if self.avatarUrl is not None:
            document["avatar_url"] = self.avatarUrl
        if self.content is not None:
            document["content"] = self.content
        own = discord_embed(summary)
        embeds = [embed.document(self.avatarUrl) for embed in self.embedList or []]
        if embeds:
            embeds[0].update(own)
        else:
            embeds = [own]
        document["embeds"] = embeds
        return document


def discord_embed(summary: Summary) -> dict[str, Any]:
    """The summary as one embed: the facts, the link, the outcome in the footer."""
    lines = [f"{name}: {value}" for name, value in summary.facts()]
    description = "\n".join(lines)
    if summary.custom_message:
        description = f"{summary.custom_message}\n\n{description}"
    if summary.execution.link:
        description += f"\n\n[Link to the Execution page]({summary.execution.link})"
    return {"description": description, "footer": {"text": summary.outcome}}
