"""Telegram's Bot API `sendMessage` as its documentation describes it (core.telegram.org/bots/api#sendmessage and
"Making requests"): `POST /bot<token>/sendMessage` with JSON `chat_id` (integer or `@channelusername`), `text`
(1-4096 characters) and optional `parse_mode` (`HTML`, `MarkdownV2`, `Markdown`). Every answer is JSON: `{"ok":
true, "result": <Message>}`, or `{"ok": false, "error_code", "description"}`: 401 "Unauthorized" for a bad token,
400 "Bad Request: chat not found" / "Bad Request: message text is empty" / "Bad Request: unsupported parse_mode",
429 "Too Many Requests: retry after N" with `parameters.retry_after`."""

from __future__ import annotations

import time
from typing import Any

from saas.notify_base import ApiServer, Reply, Request, json_body

PARSE_MODES = ("HTML", "MarkdownV2", "Markdown")


def _refused(code: int, description: str, **extra: Any) -> Reply:
    return Reply(code, {"ok": False, "error_code": code, "description": description, **extra})


class TelegramApi(ApiServer):
    name = "telegram"

    def __init__(self, token: str, chats: dict[str, int]) -> None:
        """`chats`: the chat ids and `@usernames` the bot may post to, each with its numeric id."""
        super().__init__()
        self.token = token
        self.chats = chats

    def throttled(self, retry_after: int) -> Reply:
        return _refused(429, f"Too Many Requests: retry after {retry_after}", parameters={"retry_after": retry_after})

    def answer(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return _refused(404, "Not Found")
        if parts[0][3:] != self.token:
            return _refused(401, "Unauthorized")
        if parts[1] != "sendMessage":
            return _refused(404, "Not Found")
        body = json_body(request)
        if not isinstance(body, dict):
            return _refused(400, "Bad Request: message text is empty")
        chat = self.chats.get(str(body.get("chat_id", "")))
        if chat is None:
            return _refused(400, "Bad Request: chat not found")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _refused(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return _refused(400, "Bad Request: message is too long")
        mode = body.get("parse_mode")
        if mode is not None and mode not in PARSE_MODES:
            return _refused(400, "Bad Request: unsupported parse_mode")
        message = {"message_id": len(self.accepted) + 1, "chat": {"id": chat}, "date": int(time.time()), "text": text}
        return Reply(200, {"ok": True, "result": message})
