"""Routing notices to a tenant's channels, and the shapes of what is sent (no I/O here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import yaml

from packs.tenant import NotificationPolicies, TenantPolicyPack
from tests.conftest import SAMPLES
from tools.notifications.formats import email_message, webhook_body
from tools.notifications.model import Delivery, Notice
from tools.notifications.routing import route, should_notify, unrouted

ACME = TenantPolicyPack.model_validate(
    yaml.safe_load((SAMPLES / "tenants" / "acme-capital.yaml").read_text())
).notificationPolicies
FROM = "exops@ops.example"
ACME_FROM = "exops-noreply@acme-capital.example"


def notice(group: str = "settlements-ops", **changes: Any) -> Notice:
    values: dict[str, Any] = {
        "tenant_id": "acme-capital",
        "exception_id": "EX-42",
        "event": "approval_required",
        "group": group,
        "subject": "Settlement fail on T-1001 needs approval",
        "text": "Counterparty chase is ready; approve to send.",
        "severity": "HIGH",
        "exception_type": "SETTLEMENT_FAIL",
        "status": "PENDING_APPROVAL",
        "facts": {"tradeId": "T-1001", "amount": 250000},
    }
    values.update(changes)
    return Notice(**values)


def policies(**doc: Any) -> NotificationPolicies:
    return NotificationPolicies.model_validate(doc)


# --- should_notify -------------------------------------------------------------------------------


def test_acme_notifies_on_every_trigger() -> None:
    assert [
        should_notify(event, ACME) for event in ("approval_required", "escalation", "resolved", "step")
    ] == [
        True,
        True,
        True,
        True,
    ]


def test_notify_on_filters_triggers_but_never_a_playbook_step() -> None:
    only_escalations = policies(notifyOn=["escalation"])
    assert should_notify("escalation", only_escalations) is True
    assert should_notify("approval_required", only_escalations) is False
    assert should_notify("resolved", only_escalations) is False
    assert should_notify("step", only_escalations) is True
    assert should_notify("step", policies(notifyOn=[])) is True
    assert should_notify("resolved", policies(notifyOn=[])) is False


# --- route against the real acme-capital policy --------------------------------------------------


def test_acme_settlements_ops_get_one_email_and_the_slack_channel() -> None:
    assert route(notice("settlements-ops"), ACME, default_from=FROM) == [
        Delivery(
            "ops-email", "email", recipients=("settlements@acme-capital.example",), from_address=ACME_FROM
        ),
        Delivery("settlements-slack", "webhook", url_ref="ACME_SLACK_SETTLEMENTS_WEBHOOK", format="slack"),
    ]


def test_acme_escalations_reach_email_slack_and_teams() -> None:
    assert route(notice("settlements-escalations"), ACME, default_from=FROM) == [
        Delivery(
            "ops-email",
            "email",
            recipients=("settlements-managers@acme-capital.example",),
            from_address=ACME_FROM,
        ),
        Delivery("settlements-slack", "webhook", url_ref="ACME_SLACK_SETTLEMENTS_WEBHOOK", format="slack"),
        Delivery("incident-bridge", "webhook", url_ref="ACME_TEAMS_OPS_WEBHOOK", format="teams"),
    ]


def test_acme_email_only_group_and_escalation_queue() -> None:
    assert route(notice("recon-team"), ACME, default_from=FROM) == [
        Delivery(
            "ops-email", "email", recipients=("reconciliations@acme-capital.example",), from_address=ACME_FROM
        )
    ]
    assert route(notice("acme-ops-managers"), ACME, default_from=FROM) == [
        Delivery(
            "ops-email", "email", recipients=("ops-managers@acme-capital.example",), from_address=ACME_FROM
        ),
        Delivery("incident-bridge", "webhook", url_ref="ACME_TEAMS_OPS_WEBHOOK", format="teams"),
    ]
    assert unrouted(notice("acme-ops-managers"), ACME) is None


def test_acme_group_without_recipients_is_unrouted() -> None:
    assert route(notice("treasury"), ACME, default_from=FROM) == []
    assert unrouted(notice("treasury"), ACME) == (
        "group 'treasury' has no recipients in notificationPolicies.recipientsByGroup"
    )


# --- de-duplication, sender rules, unknown names -------------------------------------------------


def test_addresses_are_merged_into_one_email_without_repeats() -> None:
    pols = policies(
        channels={"hook": {"kind": "webhook", "urlRef": "HOOK_URL"}},
        recipientsByGroup={
            "ops": [
                "Ann@x.example",
                "bob@x.example",
                "hook",
                "ann@x.example",
                " bob@x.example ",
                "hook",
                "cy@x.example",
            ]
        },
    )
    assert route(notice("ops"), pols, default_from=FROM) == [
        Delivery(
            "email", "email", recipients=("Ann@x.example", "bob@x.example", "cy@x.example"), from_address=FROM
        ),
        Delivery("hook", "webhook", url_ref="HOOK_URL", format="json"),
    ]


def test_sender_is_the_first_declared_email_channel_when_the_group_names_none() -> None:
    pols = policies(
        channels={
            "hook": {"kind": "webhook", "urlRef": "HOOK_URL", "format": "teams"},
            "main-mail": {"kind": "email", "fromAddress": "main@t.example"},
            "other-mail": {"kind": "email", "fromAddress": "other@t.example"},
        },
        recipientsByGroup={"ops": ["a@x.example"]},
    )
    assert route(notice("ops"), pols, default_from=FROM) == [
        Delivery("main-mail", "email", recipients=("a@x.example",), from_address="main@t.example")
    ]


def test_naming_an_email_channel_picks_the_sender_only() -> None:
    pols = policies(
        channels={
            "main-mail": {"kind": "email", "fromAddress": "main@t.example"},
            "other-mail": {"kind": "email", "fromAddress": "other@t.example"},
            "bare-mail": {"kind": "email"},
        },
        recipientsByGroup={
            "ops": ["a@x.example", "other-mail"],
            "bare": ["bare-mail", "b@x.example"],
            "sender-only": ["other-mail"],
        },
    )
    assert route(notice("ops"), pols, default_from=FROM) == [
        Delivery("other-mail", "email", recipients=("a@x.example",), from_address="other@t.example")
    ]
    assert route(notice("bare"), pols, default_from=FROM) == [
        Delivery("bare-mail", "email", recipients=("b@x.example",), from_address=FROM)
    ]
    assert route(notice("sender-only"), pols, default_from=FROM) == []
    assert unrouted(notice("sender-only"), pols) == (
        "group 'sender-only' lists no email address or webhook channel (only: 'other-mail')"
    )


def test_without_email_channels_the_default_sender_is_used() -> None:
    pols = policies(recipientsByGroup={"ops": ["a@x.example"]})
    assert route(notice("ops"), pols, default_from=FROM) == [
        Delivery("email", "email", recipients=("a@x.example",), from_address=FROM)
    ]


def test_unknown_names_are_skipped_and_empty_groups_are_unrouted() -> None:
    pols = policies(
        channels={"hook": {"kind": "webhook", "urlRef": "HOOK_URL", "format": "slack"}},
        recipientsByGroup={"ops": ["ghost", "hook"], "ghosts": ["ghost", "spectre"], "empty": []},
    )
    assert route(notice("ops"), pols, default_from=FROM) == [
        Delivery("hook", "webhook", url_ref="HOOK_URL", format="slack")
    ]
    assert route(notice("ghosts"), pols, default_from=FROM) == []
    assert unrouted(notice("ghosts"), pols) == (
        "group 'ghosts' lists no email address or webhook channel (only: 'ghost', 'spectre')"
    )
    assert unrouted(notice("empty"), pols) == (
        "group 'empty' has an empty recipient list in notificationPolicies.recipientsByGroup"
    )


# --- webhook formats ----------------------------------------------------------------------------


def test_json_format_is_a_flat_document() -> None:
    assert webhook_body(notice(), "json") == {
        "event": "approval_required",
        "tenantId": "acme-capital",
        "exceptionId": "EX-42",
        "group": "settlements-ops",
        "subject": "Settlement fail on T-1001 needs approval",
        "text": "Counterparty chase is ready; approve to send.",
        "severity": "HIGH",
        "exceptionType": "SETTLEMENT_FAIL",
        "status": "PENDING_APPROVAL",
        "facts": {"tradeId": "T-1001", "amount": 250000},
    }


def test_slack_format_is_block_kit_with_a_fallback_text() -> None:
    assert webhook_body(notice(), "slack") == {
        "text": "Settlement fail on T-1001 needs approval: Counterparty chase is ready; approve to send.",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "Settlement fail on T-1001 needs approval"},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "Counterparty chase is ready; approve to send."},
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Severity*\nHIGH"},
                    {"type": "mrkdwn", "text": "*Type*\nSETTLEMENT_FAIL"},
                    {"type": "mrkdwn", "text": "*Status*\nPENDING_APPROVAL"},
                    {"type": "mrkdwn", "text": "*Exception*\nEX-42"},
                    {"type": "mrkdwn", "text": "*tradeId*\nT-1001"},
                    {"type": "mrkdwn", "text": "*amount*\n250000"},
                ],
            },
        ],
    }


def test_slack_format_escapes_and_respects_limits() -> None:
    many = {f"k{i}": i for i in range(12)}
    body = webhook_body(
        notice(subject="x" * 200, text="<!channel> a & b", severity=None, status=None, facts=many), "slack"
    )
    header, text, fields = body["blocks"]
    assert header["text"]["text"] == "x" * 149 + "…"
    assert text["text"]["text"] == "&lt;!channel&gt; a &amp; b"
    assert [field["text"] for field in fields["fields"]] == [
        "*Type*\nSETTLEMENT_FAIL",
        "*Exception*\nEX-42",
        *[f"*k{i}*\n{i}" for i in range(7)],
        "*More*\n5 more facts",
    ]
    assert [block["type"] for block in webhook_body(notice(text="  "), "slack")["blocks"]] == [
        "header",
        "section",
    ]


def test_teams_format_is_an_adaptive_card_message() -> None:
    assert webhook_body(notice(), "teams") == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": "Settlement fail on T-1001 needs approval",
                            "weight": "Bolder",
                            "size": "Medium",
                            "wrap": True,
                        },
                        {
                            "type": "TextBlock",
                            "text": "Counterparty chase is ready; approve to send.",
                            "wrap": True,
                        },
                        {
                            "type": "FactSet",
                            "facts": [
                                {"title": "Severity", "value": "HIGH"},
                                {"title": "Type", "value": "SETTLEMENT_FAIL"},
                                {"title": "Status", "value": "PENDING_APPROVAL"},
                                {"title": "Exception", "value": "EX-42"},
                                {"title": "tradeId", "value": "T-1001"},
                                {"title": "amount", "value": "250000"},
                            ],
                        },
                    ],
                },
            }
        ],
    }


# --- email message ------------------------------------------------------------------------------


def test_email_message_headers_and_body() -> None:
    delivery = Delivery(
        "ops-email",
        "email",
        recipients=("a@acme-capital.example", "b@acme-capital.example"),
        from_address=ACME_FROM,
    )
    message = email_message(notice(subject="Settlement fail\non T-1001"), delivery)
    assert message["From"] == ACME_FROM
    assert message["To"] == "a@acme-capital.example, b@acme-capital.example"
    assert message["Subject"] == "[exops] Settlement fail on T-1001"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Exops-Tenant"] == "acme-capital"
    assert message["X-Exops-Exception"] == "EX-42"
    assert message["X-Exops-Event"] == "approval_required"
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith(
        ".exops@acme-capital.example>"
    )
    sent_at = parsedate_to_datetime(message["Date"])
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == (
        "Counterparty chase is ready; approve to send.\n"
        "\n"
        "Severity: HIGH\n"
        "Type: SETTLEMENT_FAIL\n"
        "Status: PENDING_APPROVAL\n"
        "Exception: EX-42\n"
        "tradeId: T-1001\n"
        "amount: 250000\n"
        "\n"
        "-- \n"
        "Sent by exops for tenant acme-capital (approval_required, group settlements-ops).\n"
    )


def test_email_message_needs_an_email_delivery_with_recipients() -> None:
    with pytest.raises(ValueError, match="not an email delivery"):
        email_message(notice(), Delivery("hook", "webhook", url_ref="HOOK_URL"))
    with pytest.raises(ValueError, match="not an email delivery"):
        email_message(notice(), Delivery("email", "email", recipients=(), from_address=FROM))
