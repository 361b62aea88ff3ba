"""A Slack incoming webhook as Slack's documentation describes it (api.slack.com/messaging/webhooks, "Handling
errors"): `POST /services/{team}/{bot}/{secret}`, JSON with `text` and/or `blocks` (and the legacy `attachments`).
Accepted: 200 with the text body `ok`. Refused with a text body: 400 `invalid_payload` / `no_text`, 403
`invalid_token`, 404 `no_service`, 429 with `Retry-After`."""

from __future__ import annotations

from saas.notify_base import ApiServer, Reply, Request, json_body


class SlackWebhookApi(ApiServer):
    name = "slack"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{self.path}"

    def answer(self, request: Request) -> Reply:
        if request.method != "POST" or not request.path.startswith("/services/"):
            return Reply(404, "no_service")
        if request.path != self.path:
            return Reply(403, "invalid_token")
        body = json_body(request)
        if not isinstance(body, dict):
            return Reply(400, "invalid_payload")
        if not body.get("text") and not body.get("blocks") and not body.get("attachments"):
            return Reply(400, "no_text")
        blocks = body.get("blocks")
        if blocks is not None and not (
            isinstance(blocks, list) and all(isinstance(b, dict) and b.get("type") for b in blocks)
        ):
            return Reply(400, "invalid_blocks")
        return Reply(200, "ok")
