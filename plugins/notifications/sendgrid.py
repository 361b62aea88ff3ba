"""SendGrid: `SendGridMailSend` sends a mail with the v3 Web API (`POST /v3/mail/send`, `Authorization: Bearer
<key>`, a JSON body of `personalizations`, `from`, `subject`, `content`, `attachments`); `SendGridMailExecution`
mails an execution's summary. SendGrid answers 202 with an empty body when it accepts the mail, else
`{"errors": [{"message", "field", "help"}]}`, whose messages the error quotes; the key is never shown.

`endpointOverride` is gitsync's own property (Kestra's task always talks to https://api.sendgrid.com): another
server speaking the same API, a relay or a test double."""

from __future__ import annotations

import base64
from html import escape
from typing import Any, ClassVar

from pydantic import Field

from plugins.core._props import as_str_list
from plugins.notifications.http import RequestOptions, post_json
from plugins.notifications.summary import ExecutionFields, Summary
from plugins.values import Options
from runner.api import RunContext, TaskFailed
from runner.plugin import Task

SENDGRID_API = "https://api.sendgrid.com"
PLAIN_FALLBACK = "Please view this email in a modern email client"
"""Kestra's plain-text body when `textContent` renders empty."""


class Attachment(Options):
    """A file of the execution's storage attached to the mail."""

    uri: str
    """Storage URI of the content (kestra:///…)."""
    name: str
    """File name shown in the mail."""
    contentType: str = "application/octet-stream"
    """MIME type of the content."""


class SendGridMailSend(Task):
    """Send an e-mail through SendGrid's v3 mail API."""

    type_name: ClassVar[str] = "io.kestra.plugin.notifications.sendgrid.SendGridMailSend"

    sendgridApiKey: str
    """The SendGrid API key (a secret)."""
    from_: str = Field(alias="from")
    """Sender address."""
    to: str | list[str]
    """Recipient addresses (a list; one address, comma-separated ones, or an expression rendering a list)."""
    cc: str | list[str] | None = None
    """Copy recipients."""
    subject: str | None = None
    """Subject of the mail."""
    htmlContent: str | None = None
    """HTML body."""
    textContent: str | None = None
    """Plain-text body."""
    attachments: list[Attachment] | None = None
    """Files attached to the mail."""
    embeddedImages: list[Attachment] | None = None
    """Images the HTML body shows as cid:<name>."""
    endpointOverride: str | None = None
    """Another server of SendGrid's API (gitsync's addition; default https://api.sendgrid.com)."""
    options: RequestOptions | None = None
    """HTTP client options (gitsync's addition)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return self.send(ctx, self.htmlContent, self.textContent)

    def send(self, ctx: RunContext, html: str | None, text: str | None) -> dict[str, Any]:
        key = self.sendgridApiKey.strip()
        if not key:
            raise TaskFailed("sendgridApiKey is required (a SendGrid API key)", permanent=True)
        to = as_str_list(self.to, "to")
        if not to:
            raise TaskFailed("to must name at least one recipient", permanent=True)
        personalization: dict[str, Any] = {"to": [{"email": address} for address in to]}
        cc = as_str_list(self.cc, "cc")
        if cc:
            personalization["cc"] = [{"email": address} for address in cc]
        if self.subject is not None:
            personalization["subject"] = self.subject
        content = []
        if text is not None:  # SendGrid wants text/plain first
            content.append({"type": "text/plain", "value": text or PLAIN_FALLBACK})
        if html is not None:
            content.append({"type": "text/html", "value": html})
        if not content:
            raise TaskFailed("set htmlContent or textContent (the mail's body)", permanent=True)
        mail: dict[str, Any] = {"personalizations": [personalization], "from": {"email": self.from_}}
        mail["content"] = content
        files = [self._file(ctx, a, "attachment") for a in self.attachments or []]
        files += [self._file(ctx, a, "inline") for a in self.embeddedImages or []]
        if files:
            mail["attachments"] = files
        base = (self.endpointOverride or SENDGRID_API).rstrip("/")
        headers = {"Authorization": f"Bearer {key}"}
        response = post_json("SendGrid", f"{base}/v3/mail/send", mail, self.options, headers=headers, secrets=(key,))
        ctx.logger.info(f"SendGrid accepted the mail to {len(to) + len(cc)} recipient(s) (HTTP {response.status_code})")
        return {
            "body": response.text,
            "headers": {name: value for name, value in response.headers.items()},
            "statusCode": response.status_code,
        }

    @staticmethod
    def _file(ctx: RunContext, attachment: Attachment, disposition: str) -> dict[str, Any]:
        data = ctx.storage.path(attachment.uri).read_bytes()
        entry = {
            "content": base64.b64encode(data).decode("ascii"),
            "filename": attachment.name,
            "type": attachment.contentType,
            "disposition": disposition,
        }
        if disposition == "inline":
            entry["content_id"] = attachment.name
        return entry


class SendGridMailExecution(ExecutionFields, SendGridMailSend):
    """Mail a summary of an execution (its flow, state, duration, failed task, link) through SendGrid."""

    type_name: ClassVar[str] = "io.kestra.plugin.notifications.sendgrid.SendGridMailExecution"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        summary = self.summary(ctx)
        return self.send(ctx, summary_html(summary), summary_text(summary))


def summary_html(summary: Summary) -> str:
    """The summary as a small HTML page: title (linked), outcome, custom message, a table of the facts."""
    link = summary.execution.link
    title = escape(summary.title)
    heading = f'<a href="{escape(link)}">{title}</a>' if link else title
    rows = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in summary.facts())
    custom = f"<p>{escape(summary.custom_message)}</p>" if summary.custom_message else ""
    return f"<h2>{heading}</h2><p>{escape(summary.outcome)}</p>{custom}<table>{rows}</table>"


def summary_text(summary: Summary) -> str:
    lines = [summary.title, summary.outcome]
    if summary.custom_message:
        lines.append(summary.custom_message)
    lines += [f"{name}: {value}" for name, value in summary.facts()]
    if summary.execution.link:
        lines.append(summary.execution.link)
    return "\n".join(lines)
