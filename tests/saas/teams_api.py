"""A Microsoft Teams incoming webhook (Office 365 connector) as its documentation describes it (learn.microsoft.com:
"Create an Incoming Webhook", "Send messages using Incoming Webhook"): `POST /webhookb2/{group}@{tenant}/
IncomingWebhook/{connector}/{owner}`, JSON, either a legacy actionable MessageCard (`@type: MessageCard`, which needs
`summary` or `text`) or a message whose `attachments` hold an Adaptive Card (`contentType
application/vnd.microsoft.card.adaptive`). Accepted: 200 with the text body `1`. Refused with a text body: 400
"Summary or Text is required." / "Bad payload received by generic incoming webhook.", 404 for an unknown
webhook, 429 (throttled) with `Retry-After`."""

from __future__ import annotations

from typing import Any

from saas.notify_base import ApiServer, Reply, Request, json_body

ADAPTIVE = "application/vnd.microsoft.card.adaptive"


class TeamsApi(ApiServer):
    name = "teams"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{self.path}"

    def throttled(self, retry_after: int) -> Reply:
        return Reply(
            429, "Microsoft Teams endpoint returned HTTP error 429 (throttled)", {"Retry-After": str(retry_after)}
        )

    def answer(self, request: Request) -> Reply:
        if request.method != "POST":
            return Reply(405, "Method Not Allowed")
        if request.path != self.path:
            return Reply(404, "Webhook not found")
        body = json_body(request)
        if not isinstance(body, dict):
            return Reply(400, "Bad payload received by generic incoming webhook.")
        problem = self.problem(body)
        return Reply(400, problem) if problem else Reply(200, "1")

    @staticmethod
    def problem(body: dict[str, Any]) -> str | None:
        if body.get("@type") == "MessageCard":
            if not body.get("summary") and not body.get("text"):
                return "Summary or Text is required."
            for section in body.get("sections") or []:
                for fact in section.get("facts") or []:
                    if not isinstance(fact, dict) or not isinstance(fact.get("name"), str):
                        return "Bad payload received by generic incoming webhook."
            return None
        if body.get("type") == "message":
            attachments = body.get("attachments")
            if not isinstance(attachments, list) or not attachments:
                return "Bad payload received by generic incoming webhook."
            for attachment in attachments:
                content = attachment.get("content") if isinstance(attachment, dict) else None
                if attachment.get("contentType") != ADAPTIVE or not isinstance(content, dict):
                    return "Bad payload received by generic incoming webhook."
                if content.get("type") != "AdaptiveCard":
                    return "Bad payload received by generic incoming webhook."
            return None
        if body.get("text"):
            return None
        return "Summary or Text is required."
