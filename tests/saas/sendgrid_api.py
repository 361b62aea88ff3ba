"""SendGrid's v3 Mail Send endpoint as its documentation describes it (twilio.com/docs/sendgrid: "Mail Send",
"Errors"): `POST /v3/mail/send`, `Authorization: Bearer <API key>`, a JSON body with `personalizations` (each
with a non-empty `to` of `{email}`), `from.email`, a `subject` (per personalization or top level) and `content`
(`type`/`value`, a value of at least one character, text/plain first); `attachments` base64 with a filename.
Accepted: 202 with an empty body and an `X-Message-Id`. Refused: `{"errors": [{"message", "field", "help"}]}` with
400 (validation), 401 (key), 429 (rate limit)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from saas.notify_base import ApiServer, Reply, Request, json_body

EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _error(message: str, field: str | None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": None}


class SendGridApi(ApiServer):
    name = "sendgrid"

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    def throttled(self, retry_after: int) -> Reply:
        return Reply(429, {"errors": [_error("too many requests", None)]}, {"Retry-After": str(retry_after)})

    def answer(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != "/v3/mail/send":
            return Reply(404, {"errors": [_error("resource not found", None)]})
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            grant = "The provided authorization grant is invalid, expired, or revoked"
            return Reply(401, {"errors": [_error(grant, None)]})
        body = json_body(request)
        if not isinstance(body, dict):
            return Reply(400, {"errors": [_error("Bad Request", None)]})
        errors = self.validate(body)
        if errors:
            return Reply(400, {"errors": errors})
        return Reply(202, b"", {"X-Message-Id": f"msg-{len(self.accepted) + 1}"})

    @staticmethod
    def validate(body: dict[str, Any]) -> list[dict[str, Any]]:
        errors = []
        personalizations = body.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            errors.append(
                _error(
                    "The personalizations field is required and must have at least one personalization.",
                    "personalizations",
                )
            )
            personalizations = []
        for i, item in enumerate(personalizations):
            to = item.get("to") if isinstance(item, dict) else None
            if not isinstance(to, list) or not to:
                errors.append(
                    _error(
                        "The to array is required for all personalization objects, and must have at "
                        "least one email object with a valid email address.",
                        f"personalizations.{i}.to",
                    )
                )
                continue
            for kind in ("to", "cc"):
                for j, address in enumerate(item.get(kind) or []):
                    if not (isinstance(address, dict) and EMAIL.match(str(address.get("email", "")))):
                        errors.append(
                            _error("Does not contain a valid address.", f"personalizations.{i}.{kind}.{j}.email")
                        )
            if "subject" not in item and "subject" not in body:
                errors.append(
                    _error(
                        "The subject is required. You can get around this requirement if you use a "
                        "template with a subject defined or if every personalization has a subject "
                        "defined.",
                        "subject",
                    )
                )
        sender = body.get("from")
        if not (isinstance(sender, dict) and EMAIL.match(str(sender.get("email", "")))):
            errors.append(_error("The from email does not contain a valid address.", "from.email"))
        content = body.get("content")
        if not isinstance(content, list) or not content:
            errors.append(
                _error(
                    "Unless a valid template_id is provided, the content parameter is required. There "
                    "must be at least one defined content block.",
                    "content",
                )
            )
            content = []
        for i, block in enumerate(content):
            if not (isinstance(block, dict) and isinstance(block.get("value"), str) and block["value"]):
                errors.append(
                    _error("The content value must be a string at least one character in length.", f"content.{i}.value")
                )
            elif i > 0 and block.get("type") == "text/plain":
                errors.append(
                    _error(
                        "If present, text/plain content must be first, followed by any other content.",
                        f"content.{i}.type",
                    )
                )
        for i, attachment in enumerate(body.get("attachments") or []):
            try:
                base64.b64decode(str(attachment.get("content", "")), validate=True)
            except (binascii.Error, ValueError):
                errors.append(_error("The attachment content must be base64 encoded.", f"attachments.{i}.content"))
            if not attachment.get("filename"):
                errors.append(_error("The attachment filename parameter is required.", f"attachments.{i}.filename"))
        return errors
