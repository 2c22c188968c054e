"""Sending one email through the operator's SMTP server.

The standard library's ``smtplib`` is enough for one message per notice and needs no extra
dependency; it blocks, so it runs in a worker thread. ``send_email`` raises on any failure and
``is_transient`` tells the caller which failures are worth another attempt: connection trouble and
4xx replies are, 5xx replies (unknown mailbox, bad credentials, refused sender) are not, since the
same message would be refused again.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

SmtpSecurity = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: SmtpSecurity = "none"
    """``tls``: TLS from the first byte (usually port 465); ``starttls``: upgrade a plain connection
    (usually port 587); ``none``: plain SMTP, for a relay on a trusted network."""
    timeout_seconds: float = 10.0
    default_from: str = "exops@localhost"
    helo_name: str | None = None
    """The name exops gives in EHLO; None lets smtplib use this machine's fully qualified name."""


class SmtpPartialRefusal(smtplib.SMTPException):
    """The server took the message for some recipients and refused others. Not retried: the
    accepted recipients would get it twice."""

    def __init__(self, refused: dict[str, tuple[int, bytes]]) -> None:
        self.refused = refused
        detail = ", ".join(
            f"{address} ({code} {reply.decode(errors='replace')})"
            for address, (code, reply) in refused.items()
        )
        super().__init__(f"refused recipients: {detail}; the others were accepted")


def _send_blocking(config: SmtpConfig, message: EmailMessage) -> None:
    client: smtplib.SMTP
    if config.security == "tls":
        client = smtplib.SMTP_SSL(
            config.host, config.port, local_hostname=config.helo_name,
            timeout=config.timeout_seconds, context=ssl.create_default_context(),
        )  # fmt: skip
    else:
        client = smtplib.SMTP(
            config.host, config.port, local_hostname=config.helo_name, timeout=config.timeout_seconds
        )
    with client:
        if config.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if config.username:
            client.login(config.username, config.password or "")
        refused = client.send_message(message)
    if refused:
        raise SmtpPartialRefusal(refused)


async def send_email(config: SmtpConfig, message: EmailMessage) -> None:
    """Send ``message`` (its From and To headers give the envelope); raise ``smtplib.SMTPException``
    or ``OSError`` when the server cannot be reached or does not accept it."""
    await asyncio.to_thread(_send_blocking, config, message)


def is_transient(exc: BaseException) -> bool:
    """Whether sending again may succeed."""
    if isinstance(exc, SmtpPartialRefusal | smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError):
        return False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, smtplib.SMTPException | OSError)


def describe(exc: BaseException) -> str:
    """A one-line account of a failed send for the audit trail (no credentials: smtplib never puts
    the password in its errors)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        detail = ", ".join(
            f"{address} ({code} {reply.decode(errors='replace')})"
            for address, (code, reply) in exc.recipients.items()
        )
        return f"all recipients refused: {detail}"
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return f"SMTP {exc.smtp_code}: {' '.join(reply.split())}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
