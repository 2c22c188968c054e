"""Delivering notices: a real SMTP server on 127.0.0.1, webhooks answered by respx, retries timed
by a fake sleep, and webhook URLs (secrets) never showing up in what is recorded."""

from __future__ import annotations

import json
import logging
import smtplib
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import httpx
import pytest
import respx
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from packs.tenant import NotificationPolicies, TenantPolicyPack
from tests.conftest import SAMPLES
from tests.secret_helpers import NAMESPACE, lookup
from tools.notifications.email import SmtpConfig, SmtpPartialRefusal, is_transient
from tools.notifications.formats import webhook_body
from tools.notifications.model import Delivery, DeliveryResult, Notice
from tools.notifications.notifier import DeliveringNotifier, RecordingNotifier
from tools.notifications.webhook import DeliveryError, post_webhook
from tools.outbound import OutboundPolicy, parse_networks

ACME = TenantPolicyPack.model_validate(
    yaml.safe_load((SAMPLES / "tenants" / "acme-capital.yaml").read_text())
).notificationPolicies
ACME_FROM = "exops-noreply@acme-capital.example"
SLACK_TOKEN = "T0ACME/B0SETTLE/sl4ckS3cretT0ken"
TEAMS_TOKEN = "IncomingWebhook/abc123/t3amsS3cret"
SLACK_URL = f"https://hooks.slack.example/services/{SLACK_TOKEN}"
TEAMS_URL = f"https://acme.webhook.office.example/webhookb2/{TEAMS_TOKEN}"
SECRETS = {"ACME_SLACK_SETTLEMENTS_WEBHOOK": SLACK_URL, "ACME_TEAMS_OPS_WEBHOOK": TEAMS_URL}
PUBLIC_ADDRESS = "52.20.1.10"

SLACK_DELIVERY = Delivery(
    "settlements-slack", "webhook", url_ref="ACME_SLACK_SETTLEMENTS_WEBHOOK", format="slack"
)
TEAMS_DELIVERY = Delivery("incident-bridge", "webhook", url_ref="ACME_TEAMS_OPS_WEBHOOK", format="teams")


def notice(group: str = "recon-team", **changes: Any) -> Notice:
    values: dict[str, Any] = {
        "tenant_id": "acme-capital",
        "exception_id": "EX-7",
        "event": "escalation",
        "group": group,
        "subject": "Cash break on fund 12 escalated",
        "text": "The break of 1,200.00 USD is older than its SLA.",
        "severity": "HIGH",
        "exception_type": "CASH_BREAK",
        "status": "ESCALATED",
        "facts": {"fund": "F-12", "amount": 1200},
    }
    values.update(changes)
    return Notice(**values)


@dataclass
class FakeResolver:
    """Answers every name with fixed addresses (tests never use DNS) and remembers the lookups."""

    addresses: list[str] = field(default_factory=lambda: [PUBLIC_ADDRESS])
    lookups: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        return list(self.addresses)


@dataclass
class FakeSleep:
    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def notifier(
    *,
    smtp: SmtpConfig | None = None,
    secrets: dict[str, str] | None = None,
    resolver: FakeResolver | None = None,
    sleep: FakeSleep | None = None,
    allowed: tuple[str, ...] = ("127.0.0.1/32",),
) -> DeliveringNotifier:
    """A delivering notifier; ``allowed`` lets it reach the test's SMTP server on 127.0.0.1."""
    table = SECRETS if secrets is None else secrets
    return DeliveringNotifier(
        lookup(table),
        smtp=smtp,
        outbound=OutboundPolicy(parse_networks(allowed), resolver=resolver or FakeResolver()),
        retries=2,
        backoff_seconds=0.5,
        sleep=sleep or FakeSleep(),
    )


def leaks(results: list[DeliveryResult]) -> list[str]:
    """Secret fragments found anywhere in the results or their audit form."""
    text = repr(results) + json.dumps([result.as_audit() for result in results])
    return [secret for secret in (SLACK_TOKEN, TEAMS_TOKEN, "sl4ckS3cret", "t3amsS3cret") if secret in text]


# --- a real SMTP server ------------------------------------------------------------------------


@dataclass
class Mailbox:
    """An aiosmtpd handler: answers DATA with the queued replies (then 250) and keeps what it took."""

    replies: list[str] = field(default_factory=list)
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    data_commands: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_commands += 1
        reply = self.replies.pop(0) if self.replies else "250 Message accepted for delivery"
        if reply.startswith("250"):
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return reply


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def smtp_server(handler: Mailbox, **options: Any) -> Iterator[SmtpConfig]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="smtp.test", **options)
    controller.start()
    try:
        yield SmtpConfig(host="127.0.0.1", port=port, timeout_seconds=5.0, helo_name="exops.test")
    finally:
        controller.stop()


def email_delivery(*recipients: str) -> Delivery:
    return Delivery("ops-email", "email", recipients=recipients, from_address=ACME_FROM)


async def test_email_reaches_a_real_smtp_server() -> None:
    mailbox = Mailbox()
    sleep = FakeSleep()
    with smtp_server(mailbox) as config:
        results = await notifier(smtp=config, sleep=sleep).notify(notice("recon-team"), ACME)
    [result] = results
    assert (result.delivery, result.status, result.attempts, result.error) == (
        email_delivery("reconciliations@acme-capital.example"),
        "SENT",
        1,
        None,
    )
    assert result.latency_ms > 0
    assert sleep.delays == []
    [(mail_from, rcpt_tos, content)] = mailbox.received
    assert mail_from == ACME_FROM
    assert rcpt_tos == ["reconciliations@acme-capital.example"]
    message = message_from_bytes(content, policy=policy.default)
    assert message["Subject"] == "[exops] Cash break on fund 12 escalated"
    assert message["From"] == ACME_FROM
    assert message["To"] == "reconciliations@acme-capital.example"
    assert message.get_content().replace("\r\n", "\n") == (  # CRLF on the wire
        "The break of 1,200.00 USD is older than its SLA.\n\n"
        "Severity: HIGH\nType: CASH_BREAK\nStatus: ESCALATED\nException: EX-7\nfund: F-12\namount: 1200\n\n"
        "-- \nSent by exops for tenant acme-capital (escalation, group recon-team).\n"
    )


async def test_a_temporary_smtp_refusal_is_retried_after_a_backoff() -> None:
    mailbox = Mailbox(replies=["451 4.3.0 Try again later"])
    sleep = FakeSleep()
    with smtp_server(mailbox) as config:
        [result] = await notifier(smtp=config, sleep=sleep).notify(notice("middle-office"), ACME)
    assert (result.status, result.attempts, result.error) == ("SENT", 2, None)
    assert sleep.delays == [0.5]
    assert mailbox.data_commands == 2
    assert [(sender, rcpts) for sender, rcpts, _ in mailbox.received] == [
        (ACME_FROM, ["middle-office@acme-capital.example"])
    ]


async def test_a_permanent_smtp_refusal_is_not_retried() -> None:
    mailbox = Mailbox(replies=["550 5.7.1 Rejected by policy"])
    sleep = FakeSleep()
    with smtp_server(mailbox) as config:
        [result] = await notifier(smtp=config, sleep=sleep).notify(notice(), ACME)
    assert (result.status, result.attempts, result.error) == (
        "FAILED",
        1,
        "SMTP 550: 5.7.1 Rejected by policy",
    )
    assert sleep.delays == []
    assert mailbox.received == []


async def test_an_unreachable_smtp_server_is_tried_three_times_with_growing_backoff() -> None:
    sleep = FakeSleep()
    config = SmtpConfig(host="127.0.0.1", port=free_port(), timeout_seconds=2.0, helo_name="exops.test")
    [result] = await notifier(smtp=config, sleep=sleep).notify(notice(), ACME)
    assert (result.status, result.attempts) == ("FAILED", 3)
    assert result.error is not None and result.error.startswith("ConnectionRefusedError: ")
    assert sleep.delays == [0.5, 1.0]


async def test_the_smtp_host_passes_the_outbound_policy_before_any_connection() -> None:
    mailbox = Mailbox()
    resolver = FakeResolver(addresses=["10.1.2.3"])
    with smtp_server(mailbox) as config:
        [loopback] = await notifier(smtp=config, allowed=()).notify(notice(), ACME)
        named = SmtpConfig("mail.acme.test", config.port, helo_name="exops.test")
        [private] = await notifier(smtp=named, resolver=resolver, allowed=()).notify(notice(), ACME)
    assert (loopback.status, loopback.attempts) == ("FAILED", 1)
    assert loopback.error == (
        "refused: SMTP host 127.0.0.1 resolves to 127.0.0.1, refused: 127.0.0.1 is a loopback address "
        "(allow its network in EXOPS_OUTBOUND_ALLOWED_NETWORKS if this is intended)"
    )
    assert (private.status, private.attempts) == ("FAILED", 1)
    assert private.error is not None and "10.1.2.3 is a private address" in private.error
    assert resolver.lookups == [("mail.acme.test", config.port)]
    assert mailbox.received == [] and mailbox.data_commands == 0


async def test_smtp_login_uses_the_configured_credentials() -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=(data.login, data.password) == (b"exops", b"s3cret-pw"), handled=False)

    mailbox = Mailbox()
    sleep = FakeSleep()
    with smtp_server(mailbox, authenticator=authenticator, auth_require_tls=False) as config:
        good = SmtpConfig(
            config.host, config.port, username="exops", password="s3cret-pw", helo_name="exops.test"
        )
        bad = SmtpConfig(
            config.host, config.port, username="exops", password="wrong-pw", helo_name="exops.test"
        )
        [sent] = await notifier(smtp=good, sleep=sleep).notify(notice(), ACME)
        [refused] = await notifier(smtp=bad, sleep=sleep).notify(notice(), ACME)
    assert (sent.status, sent.attempts) == ("SENT", 1)
    assert logins[0] == (b"exops", b"s3cret-pw")
    assert len(mailbox.received) == 1
    assert (refused.status, refused.attempts) == ("FAILED", 1)
    assert refused.error is not None and refused.error.startswith("SMTP 535: ")
    assert "wrong-pw" not in refused.error and "wrong-pw" not in repr(bad)
    assert sleep.delays == []


async def test_email_without_an_smtp_server_fails_without_attempts() -> None:
    [result] = await notifier(smtp=None).notify(notice(), ACME)
    assert result == DeliveryResult(
        email_delivery("reconciliations@acme-capital.example"),
        "FAILED",
        attempts=0,
        error="no SMTP server configured (EXOPS_SMTP_HOST)",
    )


def test_which_smtp_failures_are_transient() -> None:
    assert is_transient(ConnectionRefusedError()) is True
    assert is_transient(TimeoutError()) is True
    assert is_transient(smtplib.SMTPServerDisconnected("gone")) is True
    assert is_transient(smtplib.SMTPDataError(451, b"later")) is True
    assert is_transient(smtplib.SMTPDataError(554, b"no")) is False
    assert is_transient(smtplib.SMTPAuthenticationError(535, b"bad")) is False
    assert is_transient(smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy")})) is True
    assert is_transient(smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy"), "b@x": (550, b"no")})) is False
    assert is_transient(SmtpPartialRefusal({"b@x": (550, b"no")})) is False
    assert is_transient(smtplib.SMTPNotSupportedError("STARTTLS")) is False


# --- webhooks ------------------------------------------------------------------------------------


async def test_slack_and_teams_webhooks_get_their_payloads() -> None:
    resolver = FakeResolver()
    with respx.mock(assert_all_called=True) as mock:
        slack = mock.post(SLACK_URL).mock(return_value=httpx.Response(200, text="ok"))
        teams = mock.post(TEAMS_URL).mock(return_value=httpx.Response(202))
        results = await notifier(resolver=resolver).notify(notice("settlements-escalations"), ACME)
    assert [(r.delivery, r.status, r.attempts, r.error) for r in results] == [
        (email_delivery("settlements-managers@acme-capital.example"), "FAILED", 0,
         "no SMTP server configured (EXOPS_SMTP_HOST)"),
        (SLACK_DELIVERY, "SENT", 1, None),
        (TEAMS_DELIVERY, "SENT", 1, None),
    ]  # fmt: skip
    assert sorted(resolver.lookups) == [("acme.webhook.office.example", 443), ("hooks.slack.example", 443)]
    slack_request = slack.calls.last.request
    assert slack_request.headers["content-type"] == "application/json"
    slack_body = json.loads(slack_request.content)
    assert slack_body == webhook_body(notice("settlements-escalations"), "slack")
    assert (
        slack_body["text"]
        == "Cash break on fund 12 escalated: The break of 1,200.00 USD is older than its SLA."
    )
    assert slack_body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Cash break on fund 12 escalated"},
    }
    assert slack_body["blocks"][2]["fields"][-1] == {"type": "mrkdwn", "text": "*amount*\n1200"}
    teams_body = json.loads(teams.calls.last.request.content)
    assert teams_body == webhook_body(notice("settlements-escalations"), "teams")
    [attachment] = teams_body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"
    assert attachment["content"]["body"][2]["facts"][0] == {"title": "Severity", "value": "HIGH"}
    assert leaks(results) == []


async def test_json_webhook_gets_the_flat_document() -> None:
    pols = NotificationPolicies.model_validate(
        {
            "channels": {"ticketing": {"kind": "webhook", "urlRef": "TICKETS_URL"}},
            "recipientsByGroup": {"ops": ["ticketing"]},
        }
    )
    url = "https://tickets.example/hooks/ops?token=t1ck3t"
    with respx.mock(assert_all_called=True) as mock:
        hook = mock.post(url).mock(return_value=httpx.Response(204))
        [result] = await notifier(secrets={"TICKETS_URL": url}).notify(notice("ops", facts={}), pols)
    assert (result.status, result.attempts) == ("SENT", 1)
    assert json.loads(hook.calls.last.request.content) == {
        "event": "escalation",
        "tenantId": "acme-capital",
        "exceptionId": "EX-7",
        "group": "ops",
        "subject": "Cash break on fund 12 escalated",
        "text": "The break of 1,200.00 USD is older than its SLA.",
        "severity": "HIGH",
        "exceptionType": "CASH_BREAK",
        "status": "ESCALATED",
        "facts": {},
    }


def slack_only() -> NotificationPolicies:
    return NotificationPolicies.model_validate(
        {
            "channels": {
                "settlements-slack": {
                    "kind": "webhook",
                    "urlRef": "ACME_SLACK_SETTLEMENTS_WEBHOOK",
                    "format": "slack",
                }
            },
            "recipientsByGroup": {"ops": ["settlements-slack"]},
        }
    )


async def test_a_server_error_is_retried_until_the_webhook_answers() -> None:
    sleep = FakeSleep()
    with respx.mock(assert_all_called=True) as mock:
        hook = mock.post(SLACK_URL).mock(side_effect=[httpx.Response(500, text="oops"), httpx.Response(200)])
        [result] = await notifier(sleep=sleep).notify(notice("ops"), slack_only())
    assert (result.delivery, result.status, result.attempts, result.error) == (
        SLACK_DELIVERY,
        "SENT",
        2,
        None,
    )
    assert hook.call_count == 2
    assert sleep.delays == [0.5]


@pytest.mark.parametrize("status", [408, 429, 502, 503])
async def test_retryable_statuses_use_every_attempt(status: int) -> None:
    sleep = FakeSleep()
    with respx.mock(assert_all_called=True) as mock:
        hook = mock.post(SLACK_URL).mock(return_value=httpx.Response(status))
        [result] = await notifier(sleep=sleep).notify(notice("ops"), slack_only())
    assert (result.status, result.attempts, result.error) == ("FAILED", 3, f"HTTP {status}")
    assert hook.call_count == 3
    assert sleep.delays == [0.5, 1.0]


@pytest.mark.parametrize(
    ("status", "reply"), [(400, "invalid_payload"), (404, "no_service"), (410, "channel_is_archived")]
)
async def test_other_client_errors_are_not_retried(status: int, reply: str) -> None:
    sleep = FakeSleep()
    with respx.mock(assert_all_called=True) as mock:
        hook = mock.post(SLACK_URL).mock(return_value=httpx.Response(status, text=reply))
        [result] = await notifier(sleep=sleep).notify(notice("ops"), slack_only())
    assert (result.status, result.attempts, result.error) == ("FAILED", 1, f"HTTP {status}: {reply}")
    assert hook.call_count == 1
    assert sleep.delays == []


async def test_a_redirect_is_not_followed() -> None:
    with respx.mock(assert_all_called=True) as mock:
        hook = mock.post(SLACK_URL).mock(
            return_value=httpx.Response(302, headers={"Location": "https://elsewhere.example/collect"})
        )
        [result] = await notifier().notify(notice("ops"), slack_only())
    assert (result.status, result.attempts, result.error) == (
        "FAILED",
        1,
        "HTTP 302 (redirects are not followed)",
    )
    assert hook.call_count == 1


async def test_connection_failures_are_retried() -> None:
    sleep = FakeSleep()
    with respx.mock(assert_all_called=True) as mock:
        mock.post(SLACK_URL).mock(side_effect=httpx.ConnectError("connection reset"))
        [result] = await notifier(sleep=sleep).notify(notice("ops"), slack_only())
    assert (result.status, result.attempts, result.error) == ("FAILED", 3, "ConnectError: connection reset")
    assert sleep.delays == [0.5, 1.0]


async def test_the_webhook_url_never_appears_in_results() -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(SLACK_URL).mock(
            side_effect=[
                httpx.ConnectError(f"cannot connect to {SLACK_URL}"),
                httpx.Response(400, text=f"unknown hook {SLACK_URL}"),
            ]
        )
        [result] = await notifier().notify(notice("ops"), slack_only())
    assert (result.status, result.attempts) == ("FAILED", 2)
    assert result.error == "HTTP 400: unknown hook https://hooks.slack.example/***"
    assert leaks([result]) == []
    secrets = {"ACME_SLACK_SETTLEMENTS_WEBHOOK": f"ftp://hooks.slack.example/services/{SLACK_TOKEN}"}
    [refused] = await notifier(secrets=secrets).notify(notice("ops"), slack_only())
    assert (refused.status, refused.attempts) == ("FAILED", 1)
    assert refused.error == "refused: only http and https URLs are allowed, not ftp"
    assert leaks([refused]) == []


async def test_a_webhook_host_on_a_private_address_is_refused_without_retry() -> None:
    sleep = FakeSleep()
    resolver = FakeResolver(addresses=["10.20.0.5"])
    with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(SLACK_URL).mock(return_value=httpx.Response(200))
        [result] = await notifier(resolver=resolver, sleep=sleep).notify(notice("ops"), slack_only())
    assert (result.status, result.attempts) == ("FAILED", 1)
    assert result.error == (
        "refused: hooks.slack.example resolves to 10.20.0.5, refused: 10.20.0.5 is a private address "
        "(allow its network in EXOPS_OUTBOUND_ALLOWED_NETWORKS if this is intended)"
    )
    assert hook.call_count == 0
    assert resolver.lookups == [("hooks.slack.example", 443)]
    assert sleep.delays == []


async def test_a_webhook_whose_secret_is_not_set_fails_without_attempts() -> None:
    with respx.mock(assert_all_mocked=True):
        results = await notifier(secrets={}).notify(notice("acme-ops-managers"), ACME)
    assert results[1] == DeliveryResult(
        TEAMS_DELIVERY,
        "FAILED",
        attempts=0,
        error=f"webhook URL secret 'ACME_TEAMS_OPS_WEBHOOK' is not set in {NAMESPACE}",
    )


async def test_the_webhook_url_stays_out_of_the_http_clients_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with respx.mock(assert_all_called=True) as mock:
        mock.post(SLACK_URL).mock(return_value=httpx.Response(200))
        mock.get("https://other.example/x").mock(return_value=httpx.Response(200))
        await post_webhook(SLACK_URL, {"text": "hi"}, outbound=OutboundPolicy(resolver=FakeResolver()),
                           timeout_seconds=1.0)  # fmt: skip
        async with httpx.AsyncClient() as client:
            await client.get("https://other.example/x")
    logged = [record.getMessage() for record in caplog.records if record.name == "httpx"]
    assert logged == [
        'HTTP Request: POST https://hooks.slack.example/*** "HTTP/1.1 200 OK"',
        'HTTP Request: GET https://other.example/x "HTTP/1.1 200 OK"',  # other requests untouched
    ]


async def test_post_webhook_reports_status_and_retryability() -> None:
    outbound = OutboundPolicy(resolver=FakeResolver())
    with respx.mock(assert_all_called=True) as mock:
        mock.post(SLACK_URL).mock(side_effect=[httpx.Response(201), httpx.Response(503), httpx.Response(404)])
        assert await post_webhook(SLACK_URL, {"text": "hi"}, outbound=outbound, timeout_seconds=1.0) == 201
        with pytest.raises(DeliveryError) as unavailable:
            await post_webhook(SLACK_URL, {"text": "hi"}, outbound=outbound, timeout_seconds=1.0)
        with pytest.raises(DeliveryError) as missing:
            await post_webhook(SLACK_URL, {"text": "hi"}, outbound=outbound, timeout_seconds=1.0)
    assert (str(unavailable.value), unavailable.value.retryable, unavailable.value.status) == (
        "HTTP 503",
        True,
        503,
    )
    assert (str(missing.value), missing.value.retryable, missing.value.status) == ("HTTP 404", False, 404)


# --- recording, and groups nobody hears about ----------------------------------------------------


async def test_recording_notifier_sends_nothing() -> None:
    recorder = RecordingNotifier(default_from="exops@ops.example")
    assert recorder.mode == "record"
    with respx.mock(assert_all_mocked=True) as mock:
        results = await recorder.notify(notice("settlements-escalations"), ACME)
    assert mock.calls.call_count == 0
    assert results == [
        DeliveryResult(email_delivery("settlements-managers@acme-capital.example"), "RECORDED"),
        DeliveryResult(SLACK_DELIVERY, "RECORDED"),
        DeliveryResult(TEAMS_DELIVERY, "RECORDED"),
    ]
    assert [result.as_audit() for result in results][1] == {
        "channel": "settlements-slack",
        "kind": "webhook",
        "recipients": [],
        "format": "slack",
        "status": "RECORDED",
        "attempts": 0,
        "latencyMs": 0.0,
        "error": None,
    }


async def test_bare_addresses_use_the_notifiers_default_sender() -> None:
    pols = NotificationPolicies.model_validate({"recipientsByGroup": {"ops": ["a@x.example"]}})
    [recorded] = await RecordingNotifier(default_from="exops@ops.example").notify(notice("ops"), pols)
    assert recorded.delivery == Delivery(
        "email", "email", recipients=("a@x.example",), from_address="exops@ops.example"
    )
    mailbox = Mailbox()
    with smtp_server(mailbox) as config:
        smtp = SmtpConfig(config.host, config.port, default_from="alerts@ops.example", helo_name="exops.test")
        [sent] = await notifier(smtp=smtp).notify(notice("ops"), pols)
    assert (sent.delivery.from_address, sent.status) == ("alerts@ops.example", "SENT")
    assert mailbox.received[0][0] == "alerts@ops.example"


@pytest.mark.parametrize("make", [lambda: RecordingNotifier(), lambda: notifier(smtp=None)])
async def test_a_group_without_recipients_yields_one_failed_result(make: Any) -> None:
    results = await make().notify(notice("treasury"), ACME)
    assert results == [
        DeliveryResult(
            Delivery(channel="none", kind="email"),
            "FAILED",
            attempts=0,
            error="group 'treasury' has no recipients in notificationPolicies.recipientsByGroup",
        )
    ]
    assert results[0].as_audit()["recipients"] == []
