"""What a notification is, where it goes, and what delivering it came to.

The graph decides *that* a group should hear about something (a ``Notice``); the tenant's
``notificationPolicies`` decide *where* (``Delivery``: one email to some addresses, or one webhook
post); a ``Notifier`` delivers, or only records in the default mode, and answers with one
``DeliveryResult`` per delivery, which the graph writes into the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from packs.tenant import NotificationPolicies

NoticeEvent = Literal["approval_required", "escalation", "resolved", "step"]
"""``step`` is a playbook's own notify step; the others are the tenant's ``notifyOn`` triggers."""
DeliveryKind = Literal["email", "webhook"]
DeliveryStatus = Literal["SENT", "FAILED", "RECORDED"]


@dataclass(frozen=True)
class Notice:
    tenant_id: str
    exception_id: str
    event: NoticeEvent
    group: str
    subject: str
    text: str
    severity: str | None = None
    exception_type: str | None = None
    status: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    """Short key/value pairs shown as fields in Slack and Teams cards (strings or numbers)."""


@dataclass(frozen=True)
class Delivery:
    channel: str
    """The channel name from ``notificationPolicies.channels``, or ``email`` for bare addresses."""
    kind: DeliveryKind
    recipients: tuple[str, ...] = ()
    """Email addresses (email deliveries only)."""
    from_address: str | None = None
    url_ref: str | None = None
    """Webhook deliveries: the settings secret holding the URL (the URL itself is never recorded)."""
    format: Literal["json", "slack", "teams"] = "json"


@dataclass(frozen=True)
class DeliveryResult:
    delivery: Delivery
    status: DeliveryStatus
    attempts: int = 0
    latency_ms: float = 0.0
    error: str | None = None

    def as_audit(self) -> dict[str, Any]:
        return {
            "channel": self.delivery.channel,
            "kind": self.delivery.kind,
            "recipients": list(self.delivery.recipients),
            "format": self.delivery.format if self.delivery.kind == "webhook" else None,
            "status": self.status,
            "attempts": self.attempts,
            "latencyMs": round(self.latency_ms, 2),
            "error": self.error,
        }


class Notifier(Protocol):
    mode: Literal["record", "send"]

    async def notify(self, notice: Notice, policies: NotificationPolicies) -> list[DeliveryResult]: ...
