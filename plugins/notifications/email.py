"""`MailSend`: send an e-mail over SMTP."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from plugins.values import Options
from runner.plugin import Task
from runner.types import Dyn


class Attachment(Options):
    name: str
    """File name shown in the mail."""
    uri: str
    """Storage URI of the content."""
    contentType: str = "application/octet-stream"
    """MIME type of the content."""


class MailSend(Task):
    """Send an HTML and/or plain-text e-mail with optional attachments."""

    type_name: ClassVar[str] = "io.kestra.plugin.email.MailSend"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.notifications.mail.MailSend",)

    host: str | None = None
    """SMTP server."""
    port: Dyn[int] | None = None
    """SMTP port."""
    transportStrategy: Dyn[Literal["SMTP", "SMTPS", "SMTP_TLS", "SMTP_OAUTH2"]] = "SMTPS"
    """Connection security."""
    username: str | None = None
    """SMTP user."""
    password: str | None = None
    """SMTP password."""
    sessionTimeout: Dyn[int] = 10000
    """SMTP session timeout in milliseconds."""
    verifyServerIdentity: Dyn[bool] = True
    """Check the server certificate's host name."""
    trustedHosts: Dyn[list[str]] | None = None
    """Hosts trusted without certificate checks."""
    from_: str | None = Field(default=None, alias="from")
    """Sender address."""
    to: str | list[str] | None = None
    """Recipients (comma-separated string or list)."""
    cc: str | list[str] | None = None
    """Copy recipients."""
    bcc: str | list[str] | None = None
    """Blind-copy recipients."""
    replyTo: str | None = None
    """Reply-To address."""
    subject: str | None = None
    """Subject; rendered."""
    htmlTextContent: str | None = None
    """HTML body; rendered."""
    plainTextContent: str | None = None
    """Plain-text body; rendered."""
    attachments: list[Attachment] | None = None
    """Files attached to the mail."""
    embeddedImages: list[Attachment] | None = None
    """Images referenced from the HTML body as cid:<name>."""
