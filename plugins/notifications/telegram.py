"""Telegram: `TelegramSend` sends a message with the Bot API (`POST {endpoint}/bot<token>/sendMessage`, JSON
`chat_id`, `text`, `parse_mode`); `TelegramExecution` sends an execution's summary. The Bot API answers
`{"ok": true, "result": …}`, or `{"ok": false, "error_code": …, "description": …}`, whose description the error
quotes; the token, which is in the URL, is never shown."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from plugins.notifications.http import RequestOptions, post_json
from plugins.notifications.summary import ExecutionFields, Summary
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn

BOT_API = "https://api.telegram.org"
PARSE_MODES = {"HTML": "HTML", "MARKDOWNV2": "MarkdownV2"}


class TelegramSend(Task):
    """Send a message to a Telegram chat or channel through a bot."""

    type_name: ClassVar[str] = "io.kestra.plugin.notifications.telegram.TelegramSend"

    token: str
    """The bot's API token (a secret)."""
    channel: str
    """The chat or channel: its id, or `@channelusername`."""
    payload: str | None = None
    """The message text; rendered."""
    parseMode: Dyn[Literal["HTML", "MARKDOWNV2"]] | None = None
    """How Telegram formats the text."""
    endpointOverride: str | None = None
    """Another Bot API server (default https://api.telegram.org)."""
    options: RequestOptions | None = None
    """HTTP client options."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if not self.payload:
            raise TaskFailed("payload is required (the message text)", permanent=True)
        self.send(ctx, self.payload)
        return {}

    def send(self, ctx: RunContext, text: str) -> None:
        if not self.token.strip():
            raise TaskFailed("token is required (the bot's API token)", permanent=True)
        message: dict[str, Any] = {"chat_id": self.channel, "text": text}
        if self.parseMode:
            mode = str(self.parseMode).upper()
            if mode not in PARSE_MODES:
                raise TaskFailed(f"parseMode must be HTML or MARKDOWNV2, got {self.parseMode!r}", permanent=True)
            message["parse_mode"] = PARSE_MODES[mode]
        base = (self.endpointOverride or BOT_API).rstrip("/")
        url = f"{base}/bot{self.token}/sendMessage"
        response = post_json("Telegram Bot API", url, message, self.options, secrets=(self.token,))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            raise TaskFailed(f"Telegram Bot API did not accept the message: {str(answer)[:200]}")
        result = answer.get("result")
        number = result.get("message_id") if isinstance(result, dict) else None
        ctx.logger.info(f"Telegram message {number} sent to {self.channel}" if number else "Telegram message sent")


class TelegramExecution(ExecutionFields, TelegramSend):
    """Send a summary of an execution (its flow, state, duration, failed task, link) to a Telegram chat."""

    type_name: ClassVar[str] = "io.kestra.plugin.notifications.telegram.TelegramExecution"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self.send(ctx, telegram_text(self.summary(ctx)))
        return {}


def telegram_text(summary: Summary) -> str:
    execution = summary.execution
    head = (
        f"<{execution.namespace} {execution.flow_id} {execution.id} ➛ {execution.state}"
        f" - Final task ID ➛ {summary.final_task}> {summary.outcome}"
    )
    if execution.link:
        head += f" ({execution.link})"
    extra = [f"{name}: {value}" for name, value in summary.facts()[4:-1]]
    if summary.custom_message:
        extra.insert(0, summary.custom_message)
    return "\n".join([head, *extra])
