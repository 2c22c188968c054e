"""The two notifiers: one that only records what it would send, one that sends.

Demo and test deployments must never email or post anywhere by accident, so recording is the
default; the delivering notifier is used only when the operator configures it. Both route the
same way (``routing.route``) and answer with one ``DeliveryResult`` per delivery, so the audit
trail reads the same in both modes. When a group has nobody to tell, both answer with a single
FAILED result on channel ``none`` carrying the reason: a notice that reached nobody is visible.

The delivering notifier sends every delivery of a notice concurrently, retrying transient failures
with exponential backoff (``backoff_seconds * 2 ** (n - 1)`` before attempt ``n + 1``). Failures
that would only repeat (no SMTP server configured, a webhook secret not set, an address the
outbound policy refuses, a 5xx SMTP reply, a 4xx HTTP reply other than 408/429) are not retried.
Errors never contain a webhook URL or any other secret.

A delivering notifier serves one tenant: its secret lookup (``tools.secrets``) answers webhook
``urlRef`` names from that tenant's namespace only. The SMTP host, though the operator's, passes
the same outbound policy as every other destination before each connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import httpx

from packs.tenant import NotificationPolicies
from tools.notifications.email import SmtpConfig, describe, is_transient, send_email
from tools.notifications.formats import email_message, webhook_body
from tools.notifications.model import Delivery, DeliveryResult, Notice
from tools.notifications.routing import route, unrouted
from tools.notifications.webhook import DeliveryError, post_webhook, scrub
from tools.outbound import OutboundPolicy, OutboundRefused
from tools.secrets import SecretLookup, SecretMissing

Sleep = Callable[[float], Awaitable[None]]

DEFAULT_FROM = "exops@localhost"
NO_SMTP = "no SMTP server configured (EXOPS_SMTP_HOST)"
NOBODY = Delivery(channel="none", kind="email")
"""The delivery a result names when a notice had nowhere to go."""


def _nobody(notice: Notice, policies: NotificationPolicies) -> list[DeliveryResult]:
    reason = unrouted(notice, policies) or f"group {notice.group!r} has no deliveries"
    return [DeliveryResult(NOBODY, "FAILED", error=reason)]


class RecordingNotifier:
    """Routes and records; sends nothing (the default outside production)."""

    mode: Literal["record", "send"] = "record"

    def __init__(self, *, default_from: str = DEFAULT_FROM) -> None:
        self._default_from = default_from

    async def notify(self, notice: Notice, policies: NotificationPolicies) -> list[DeliveryResult]:
        deliveries = route(notice, policies, default_from=self._default_from)
        if not deliveries:
            return _nobody(notice, policies)
        return [DeliveryResult(delivery, "RECORDED") for delivery in deliveries]


class _Failed(Exception):
    """An attempt's failure, already described for the audit trail."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class DeliveringNotifier:
    """Sends one tenant's notices by SMTP and webhook posts, with retries."""

    mode: Literal["record", "send"] = "send"

    def __init__(
        self,
        secrets: SecretLookup,
        *,
        smtp: SmtpConfig | None,
        outbound: OutboundPolicy,
        retries: int = 2,
        backoff_seconds: float = 0.5,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        webhook_timeout_seconds: float = 10.0,
        default_from: str | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self._secrets = secrets
        self._smtp = smtp
        self._outbound = outbound
        self._retries = retries
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._transport = transport
        self._webhook_timeout = webhook_timeout_seconds
        self._default_from = default_from or (smtp.default_from if smtp is not None else DEFAULT_FROM)

    async def notify(self, notice: Notice, policies: NotificationPolicies) -> list[DeliveryResult]:
        deliveries = route(notice, policies, default_from=self._default_from)
        if not deliveries:
            return _nobody(notice, policies)
        return list(await asyncio.gather(*(self._deliver(notice, delivery) for delivery in deliveries)))

    async def _deliver(self, notice: Notice, delivery: Delivery) -> DeliveryResult:
        if delivery.kind == "email":
            return await self._email(notice, delivery)
        return await self._webhook(notice, delivery)

    async def _email(self, notice: Notice, delivery: Delivery) -> DeliveryResult:
        smtp = self._smtp
        if smtp is None:
            return DeliveryResult(delivery, "FAILED", error=NO_SMTP)
        try:
            message = email_message(notice, delivery)
        except (ValueError, TypeError) as exc:  # e.g. an address the email library cannot write
            return DeliveryResult(delivery, "FAILED", error=f"cannot build the email: {exc}")

        async def attempt() -> None:
            try:
                await self._outbound.check_host(smtp.host, smtp.port)
            except OutboundRefused as exc:
                raise _Failed(f"refused: SMTP host {exc}", retryable=False) from None
            try:
                await send_email(smtp, message)
            except Exception as exc:
                raise _Failed(describe(exc), retryable=is_transient(exc)) from None

        return await self._with_retries(delivery, attempt)

    async def _webhook(self, notice: Notice, delivery: Delivery) -> DeliveryResult:
        ref = delivery.url_ref or ""
        try:
            url = self._secrets(ref) if ref else ""
        except SecretMissing as exc:
            return DeliveryResult(delivery, "FAILED", error=f"webhook URL {exc}")
        if not url:
            return DeliveryResult(delivery, "FAILED", error=f"webhook URL secret {ref!r} is empty")
        body = webhook_body(notice, delivery.format)

        async def attempt() -> None:
            try:
                await post_webhook(
                    url, body, outbound=self._outbound,
                    timeout_seconds=self._webhook_timeout, transport=self._transport,
                )  # fmt: skip
            except DeliveryError as exc:
                raise _Failed(scrub(str(exc), url), retryable=exc.retryable) from None
            except Exception as exc:  # anything unforeseen is recorded, never raised into the graph
                raise _Failed(scrub(f"{type(exc).__name__}: {exc}", url), retryable=False) from None

        return await self._with_retries(delivery, attempt)

    async def _with_retries(
        self, delivery: Delivery, attempt: Callable[[], Awaitable[None]]
    ) -> DeliveryResult:
        started = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            try:
                await attempt()
            except _Failed as failure:
                if not failure.retryable or attempts > self._retries:
                    latency = (time.perf_counter() - started) * 1000
                    return DeliveryResult(delivery, "FAILED", attempts, latency, str(failure))
                await self._sleep(self._backoff * 2 ** (attempts - 1))
                continue
            latency = (time.perf_counter() - started) * 1000
            return DeliveryResult(delivery, "SENT", attempts, latency)
