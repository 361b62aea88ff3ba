"""Discord's Execute Webhook endpoint as its documentation describes it (discord.com/developers/docs/resources/
webhook#execute-webhook): `POST /api/webhooks/{webhook.id}/{webhook.token}`, JSON with at least one of `content`
(up to 2000 characters) and `embeds` (up to 10 embed objects, `color` an integer), optional `username`,
`avatar_url`, `tts`. Accepted: 204 No Content (200 and the message with `?wait=true`). Refused as Discord's JSON
errors `{"message", "code"}`: 401 "Invalid Webhook Token" (50027), 404 "Unknown Webhook" (10015), 400 "Cannot send
an empty message" (50006) or a form body error (50035); 429 `{"message": "You are being rate limited.",
"retry_after", "global"}` with `Retry-After`."""

from __future__ import annotations

from typing import Any

from saas.notify_base import ApiServer, Reply, Request, json_body


class DiscordApi(ApiServer):
    name = "discord"

    def __init__(self, webhook_id: str, token: str) -> None:
        super().__init__()
        self.webhook_id, self.token = webhook_id, token

    def webhook_url(self, token: str | None = None) -> str:
        return f"{self.url}/api/webhooks/{self.webhook_id}/{token or self.token}"

    def throttled(self, retry_after: int) -> Reply:
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        return Reply(429, body, {"Retry-After": str(retry_after)})

    def answer(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 4 or parts[:2] != ["api", "webhooks"]:
            return Reply(404, {"message": "404: Not Found", "code": 0})
        if parts[2] != self.webhook_id:
            return Reply(404, {"message": "Unknown Webhook", "code": 10015})
        if parts[3] != self.token:
            return Reply(401, {"message": "Invalid Webhook Token", "code": 50027})
        body = json_body(request)
        if not isinstance(body, dict):
            return Reply(400, {"message": "Cannot send an empty message", "code": 50006})
        problem = self.problem(body)
        if problem is not None:
            return Reply(400, problem)
        if request.query.get("wait") == "true":
            return Reply(200, {"id": str(len(self.accepted) + 1), "content": body.get("content", "")})
        return Reply(204)

    @staticmethod
    def problem(body: dict[str, Any]) -> dict[str, Any] | None:
        content, embeds = body.get("content"), body.get("embeds")
        if not content and not embeds:
            return {"message": "Cannot send an empty message", "code": 50006}
        errors: dict[str, Any] = {}
        if content is not None and (not isinstance(content, str) or len(content) > 2000):
            errors["content"] = {
                "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]
            }
        if embeds is not None:
            if not isinstance(embeds, list) or len(embeds) > 10:
                errors["embeds"] = {
                    "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 10 or fewer in length."}]
                }
            else:
                for i, embed in enumerate(embeds):
                    if not isinstance(embed, dict) or not isinstance(embed.get("color", 0), int):
                        errors[f"embeds.{i}"] = {
                            "_errors": [{"code": "NUMBER_TYPE_COERCE", "message": "Value is not int."}]
                        }
        username = body.get("username")
        if username is not None and (not isinstance(username, str) or "discord" in username.lower()):
            errors["username"] = {
                "_errors": [{"code": "USERNAME_INVALID_CONTAINS", "message": 'Username cannot contain "discord"'}]
            }
        if errors:
            return {"message": "Invalid Form Body", "code": 50035, "errors": errors}
        return None
