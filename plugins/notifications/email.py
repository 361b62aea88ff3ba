"""`MailSend`: send an e-mail over SMTP; `MailExecution`: mail an execution's summary."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar, Literal

from pydantic import Field

from plugins.core._props import as_bool, as_int, as_str_list, mask
from plugins.notifications.summary import ExecutionFields
from plugins.values import Options
from runner.api import RunContext, TaskFailed
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

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if not self.host:
            raise TaskFailed("host is required (the SMTP server)")
        if not self.from_:
            raise TaskFailed("from is required (the sender address)")
        recipients = [a for field in (self.to, self.cc, self.bcc) for a in as_str_list(field, "to/cc/bcc")]
        if not recipients:
            raise TaskFailed("at least one recipient is required (to, cc or bcc)")
        message = self._message(ctx)
        strategy = str(self.transportStrategy).upper()
        port = as_int(self.port, "port") if self.port else DEFAULT_PORTS.get(strategy, 25)
        try:
            with self._connect(strategy, port) as smtp:
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message, from_addr=self.from_, to_addrs=recipients)
        except (smtplib.SMTPException, OSError) as exc:
            reason = mask(str(exc) or type(exc).__name__, self.password)
            raise TaskFailed(f"could not send the mail through {self.host}:{port} ({strategy}): {reason}") from None
        ctx.logger.info(f"Mail {message['Subject']!r} sent to {len(recipients)} recipient(s) via {self.host}:{port}")
        return {}

    def _connect(self, strategy: str, port: int) -> smtplib.SMTP:
        """An SMTP session: implicit TLS (SMTPS), required STARTTLS (SMTP_TLS), or SMTP with opportunistic STARTTLS."""
        assert self.host is not None
        timeout = as_int(self.sessionTimeout, "sessionTimeout") / 1000
        context = self._tls_context()
        if strategy == "SMTP_OAUTH2":
            raise TaskFailed("transportStrategy SMTP_OAUTH2 is not supported; use SMTPS, SMTP_TLS or SMTP")
        if strategy == "SMTPS":
            return smtplib.SMTP_SSL(self.host, port, timeout=timeout, context=context)
        smtp = smtplib.SMTP(self.host, port, timeout=timeout)
        try:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            elif strategy == "SMTP_TLS":
                raise TaskFailed(f"{self.host}:{port} does not offer STARTTLS (transportStrategy SMTP_TLS)")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        trusted = as_str_list(self.trustedHosts, "trustedHosts")
        if self.host in trusted or "*" in trusted:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif not as_bool(self.verifyServerIdentity, "verifyServerIdentity"):
            context.check_hostname = False
        return context

    def _message(self, ctx: RunContext) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.from_
        for header, value in (("To", self.to), ("Cc", self.cc)):
            addresses = as_str_list(value, header.lower())
            if addresses:
                message[header] = ", ".join(addresses)
        if self.replyTo:
            message["Reply-To"] = self.replyTo
        message["Subject"] = self.subject or ""
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid()
        self._bodies(ctx, message)
        for attachment in self.attachments or []:
            maintype, subtype = _mime(attachment.contentType)
            data = ctx.storage.path(attachment.uri).read_bytes()
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=attachment.name)
        return message

    def _bodies(self, ctx: RunContext, message: EmailMessage) -> None:
        """Plain text and/or HTML (as alternatives); embedded images ride with the HTML as cid:<name>."""
        if self.plainTextContent is not None or self.htmlTextContent is None:
            message.set_content(self.plainTextContent or "")
            if self.htmlTextContent is not None:
                message.add_alternative(self.htmlTextContent, subtype="html")
        else:
            message.set_content(self.htmlTextContent, subtype="html")
        html = message.get_body(("html",))
        for image in self.embeddedImages or []:
            if html is None:
                raise TaskFailed("embeddedImages need htmlTextContent (they are referenced as cid:<name>)")
            maintype, subtype = _mime(image.contentType)
            data = ctx.storage.path(image.uri).read_bytes()
            html.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{image.name}>", filename=image.name)


DEFAULT_PORTS = {"SMTP": 25, "SMTP_TLS": 587, "SMTPS": 465}


def _mime(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = content_type.partition("/")
    return (maintype, subtype) if maintype and subtype else ("application", "octet-stream")


class MailExecution(ExecutionFields, MailSend):
    """Mail a summary of an execution (its flow, state, duration, failed task, link) over SMTP."""

    type_name: ClassVar[str] = "io.kestra.plugin.email.MailExecution"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.notifications.mail.MailExecution",)

    def run(self, ctx: RunContext) -> dict[str, Any]:
        from plugins.notifications.sendgrid import summary_html, summary_text

        summary = self.summary(ctx)
        if self.subject is None:
            self.subject = summary.title
        self.htmlTextContent = summary_html(summary)
        self.plainTextContent = summary_text(summary)
        return super().run(ctx)
