"""Posting one notice to a webhook (Slack, Teams or a generic JSON receiver).

Webhook URLs are secrets: Slack and Teams put the token in the path, so whoever reads the URL can
post into the channel. Nothing this module raises contains the URL; errors name the host at most.
Every post is checked by the outbound policy first (a tenant must not aim exops at internal
addresses), and redirects are not followed (a receiver cannot bounce the post elsewhere).

``DeliveryError.retryable`` says whether another attempt may help: connection failures, timeouts,
408, 429 and 5xx replies may; a refused address, a redirect and other 4xx replies (a revoked
webhook answers 404 or 410, a malformed body 400) will fail again the same way.

``httpx`` logs every request's URL (at INFO); while a webhook is posted, a filter on its logger
redacts that URL, so a deployment that logs at INFO or DEBUG does not write the token to its logs.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import httpx

from tools.outbound import OutboundPolicy, OutboundRefused

RETRYABLE_STATUSES = frozenset({408, 429})
_REPLY_EXCERPT = 200


class DeliveryError(Exception):
    """A webhook post that did not succeed; the message is safe to record (it holds no URL)."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


def redact_url(url: str) -> str:
    """``https://hooks.example.com/***``: enough to tell which service, nothing that grants access."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "***"
    if not parts.scheme or not host:
        return "***"
    return f"{parts.scheme}://{host}/***"


def scrub(text: str, url: str) -> str:
    """``text`` with the URL, and its path and query on their own, replaced by their redaction."""
    if not url:
        return text
    text = text.replace(url, redact_url(url))
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    for piece in (parts.path, parts.query, parts.fragment):
        if len(piece) > 1:
            text = text.replace(piece, "***")
    return text


_POSTING: ContextVar[str | None] = ContextVar("exops_webhook_url", default=None)
"""The webhook URL being posted in this task, for the log filter below."""


class _RedactWebhookUrl(logging.Filter):
    """Rewrites an ``httpx`` log record made while a webhook is posted, without its URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        url = _POSTING.get()
        if url:
            record.msg, record.args = scrub(record.getMessage(), url), None
        return True


logging.getLogger("httpx").addFilter(_RedactWebhookUrl())


async def post_webhook(
    url: str,
    body: dict[str, Any],
    *,
    outbound: OutboundPolicy,
    timeout_seconds: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """POST ``body`` as JSON to ``url``; return the 2xx status or raise ``DeliveryError``."""
    try:
        await outbound.check(url)
    except OutboundRefused as exc:
        raise DeliveryError(f"refused: {scrub(str(exc), url)}", retryable=False) from None
    posting = _POSTING.set(url)
    try:
        async with httpx.AsyncClient(
            timeout=timeout_seconds, follow_redirects=False, transport=transport
        ) as client:
            response = await client.post(url, json=body, headers={"User-Agent": "exops-notifier"})
    except httpx.TransportError as exc:
        raise DeliveryError(_exception_text(exc, url), retryable=True) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise DeliveryError(_exception_text(exc, url), retryable=False) from None
    finally:
        _POSTING.reset(posting)
    status = response.status_code
    if response.is_success:
        return status
    reply = " ".join(response.text[:_REPLY_EXCERPT].split())
    message = f"HTTP {status}" + (f": {scrub(reply, url)}" if reply else "")
    if response.is_redirect:
        raise DeliveryError(f"{message} (redirects are not followed)", retryable=False, status=status)
    retryable = status in RETRYABLE_STATUSES or status >= 500
    raise DeliveryError(message, retryable=retryable, status=status)


def _exception_text(exc: Exception, url: str) -> str:
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {scrub(text, url)}" if text else name
