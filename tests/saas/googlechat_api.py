"""A Google Chat incoming webhook as its documentation describes it (developers.google.com/workspace/chat/quickstart/
webhooks, spaces.messages.create): `POST /v1/spaces/{space}/messages?key=<key>&token=<token>`, `Content-Type:
application/json; charset=UTF-8`, a Message with `text` and/or `cardsV2`. Accepted: 200 and the created Message
(`name`, `text`, `createTime`…). Refused as Google API errors `{"error": {"code", "message", "status"}}`: 400
INVALID_ARGUMENT (bad JSON, an empty message), 401 UNAUTHENTICATED (key or token), 404 NOT_FOUND (space), 429
RESOURCE_EXHAUSTED."""

from __future__ import annotations

from datetime import UTC, datetime

from saas.notify_base import ApiServer, Reply, Request, json_body


def _error(code: int, status: str, message: str) -> Reply:
    return Reply(code, {"error": {"code": code, "message": message, "status": status}})


class GoogleChatApi(ApiServer):
    name = "googlechat"

    def __init__(self, space: str, key: str, token: str) -> None:
        super().__init__()
        self.space, self.key, self.token = space, key, token

    def webhook_url(self, token: str | None = None) -> str:
        return f"{self.url}/v1/spaces/{self.space}/messages?key={self.key}&token={token or self.token}"

    def throttled(self, retry_after: int) -> Reply:
        reply = _error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
        reply.headers["Retry-After"] = str(retry_after)
        return reply

    def answer(self, request: Request) -> Reply:
        prefix = f"/v1/spaces/{self.space}/messages"
        if request.method != "POST" or not request.path.startswith("/v1/spaces/"):
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        if request.query.get("key") != self.key or request.query.get("token") != self.token:
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if request.path != prefix:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        body = json_body(request)
        if not isinstance(body, dict):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        text, cards = body.get("text"), body.get("cardsV2") or body.get("cards")
        if not text and not cards:
            return _error(
                400, "INVALID_ARGUMENT", "Message cannot be empty. Discarded message must contain text or cards."
            )
        if text is not None and not isinstance(text, str):
            return _error(400, "INVALID_ARGUMENT", "Invalid value at 'message.text' (TYPE_STRING)")
        number = len(self.accepted) + 1
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return Reply(
            200, {"name": f"spaces/{self.space}/messages/m{number}", "text": text or "", "createTime": created}
        )
