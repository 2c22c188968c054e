"""What a notice looks like on the wire: a webhook body per format, or an email message.

Receivers differ: a generic webhook consumer wants a flat JSON document it can map; a Slack incoming
webhook renders Block Kit (``text`` is the fallback shown in notifications, ``blocks`` the message);
a Teams incoming webhook (Workflows) renders an Adaptive Card wrapped in a ``message`` attachment.
The chat formats show the same short facts (severity, type, status, case id, the notice's facts),
capped to what the receivers accept: Slack refuses a header over 150 characters, section text over
3000, more than 10 fields or a field over 2000 characters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Literal

from tools.notifications.model import Delivery, Notice

WebhookFormat = Literal["json", "slack", "teams"]

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"
SUBJECT_PREFIX = "[exops]"

_SLACK_HEADER_MAX = 150
_SLACK_TEXT_MAX = 3000
_SLACK_FIELDS_MAX = 10
_SLACK_FIELD_MAX = 2000


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str) -> str:
    """Headers and titles are single lines (a newline in an email header would be an injection)."""
    return re.sub(r"\s+", " ", text).strip()


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def facts_of(notice: Notice) -> list[tuple[str, str]]:
    """The labelled values shown under the text: the case's own attributes, then the notice's facts."""
    known = [("Severity", notice.severity), ("Type", notice.exception_type), ("Status", notice.status)]
    facts = [(label, value) for label, value in known if value]
    facts.append(("Exception", notice.exception_id))
    facts.extend((str(key), _value(value)) for key, value in notice.facts.items())
    return facts


def json_body(notice: Notice) -> dict[str, Any]:
    return {
        "event": notice.event,
        "tenantId": notice.tenant_id,
        "exceptionId": notice.exception_id,
        "group": notice.group,
        "subject": notice.subject,
        "text": notice.text,
        "severity": notice.severity,
        "exceptionType": notice.exception_type,
        "status": notice.status,
        "facts": dict(notice.facts),
    }


def _slack_escape(text: str) -> str:
    """Slack mrkdwn treats ``&``, ``<`` and ``>`` as control characters (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(notice: Notice) -> dict[str, Any]:
    title = _one_line(notice.subject) or "exops notice"
    facts = facts_of(notice)
    if len(facts) > _SLACK_FIELDS_MAX:
        hidden = len(facts) - (_SLACK_FIELDS_MAX - 1)
        facts = [*facts[: _SLACK_FIELDS_MAX - 1], ("More", f"{hidden} more facts")]
    fields = [
        {
            "type": "mrkdwn",
            "text": _clip(f"*{_slack_escape(label)}*\n{_slack_escape(value)}", _SLACK_FIELD_MAX),
        }
        for label, value in facts
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, _SLACK_HEADER_MAX)}}
    ]
    if notice.text.strip():  # Slack refuses an empty text object
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(_slack_escape(notice.text), _SLACK_TEXT_MAX)},
            }
        )
    blocks.append({"type": "section", "fields": fields})
    fallback = f"{title}: {notice.text}" if notice.text.strip() else title
    return {"text": _clip(_slack_escape(fallback), _SLACK_TEXT_MAX), "blocks": blocks}


def teams_body(notice: Notice) -> dict[str, Any]:
    title = _one_line(notice.subject) or "exops notice"
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True}
    ]
    if notice.text.strip():
        body.append({"type": "TextBlock", "text": notice.text, "wrap": True})
    body.append(
        {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in facts_of(notice)]}
    )
    card = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def webhook_body(notice: Notice, fmt: WebhookFormat) -> dict[str, Any]:
    """The JSON document to post to a webhook channel of format ``fmt``."""
    if fmt == "slack":
        return slack_body(notice)
    if fmt == "teams":
        return teams_body(notice)
    return json_body(notice)


def email_message(notice: Notice, delivery: Delivery) -> EmailMessage:
    """A plain-text email for ``delivery`` (which carries the sender and the recipients).

    The Message-ID is made once here, so a retried send of the same message is recognisably the same
    message; ``Auto-Submitted`` keeps out-of-office replies from answering an automated notice.
    """
    if delivery.kind != "email" or not delivery.recipients:
        raise ValueError(f"channel {delivery.channel!r} is not an email delivery with recipients")
    sender = delivery.from_address or "exops@localhost"
    domain = sender.rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(delivery.recipients)
    message["Subject"] = f"{SUBJECT_PREFIX} {_one_line(notice.subject)}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid("exops", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Exops-Tenant"] = _one_line(notice.tenant_id)
    message["X-Exops-Exception"] = _one_line(notice.exception_id)
    message["X-Exops-Event"] = notice.event
    lines = [notice.text, ""]
    lines.extend(f"{label}: {value}" for label, value in facts_of(notice))
    lines.extend(
        ["", "-- ", f"Sent by exops for tenant {notice.tenant_id} ({notice.event}, group {notice.group})."]
    )
    message.set_content("\n".join(lines) + "\n")
    return message
