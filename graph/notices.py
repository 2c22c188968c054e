"""Telling people: the notices the graph sends, routed by the tenant's notificationPolicies.

Nodes decide *that* a group should hear about a case (an approval is needed, the case escalated,
it was resolved, or a playbook's notify step says so); the run's ``Notifier`` routes and delivers
(or only records, the default) and every delivery becomes an audit event with the system as actor.
A notice that cannot be delivered never stops the case: the failure is recorded and the run goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graph.context import RunContext
from graph.records import SYSTEM, audit_event
from graph.state import AuditEvent, Stage
from tools.notifications.model import Delivery, DeliveryResult, Notice, NoticeEvent
from tools.notifications.routing import should_notify

SUBJECTS: dict[NoticeEvent, str] = {
    "approval_required": "Approval needed",
    "escalation": "Escalated",
    "resolved": "Resolved",
    "step": "Playbook notice",
}


def notice_for(
    ctx: RunContext,
    event: NoticeEvent,
    exception: Mapping[str, Any],
    *,
    group: str,
    text: str,
    status: str | None = None,
    facts: dict[str, Any] | None = None,
    headline: str | None = None,
) -> Notice:
    """``headline`` replaces the event's usual subject word (a finished case closed without action is
    sent as the ``resolved`` event, so tenants' ``notifyOn`` keeps working, but not called resolved)."""
    kind = exception.get("exceptionType") or "exception"
    subject = f"{headline or SUBJECTS[event]}: {kind} {exception.get('exceptionId')}"
    if exception.get("severity"):
        subject += f" ({exception['severity']})"
    return Notice(
        tenant_id=ctx.tenant.tenantId,
        exception_id=str(exception.get("exceptionId")),
        event=event,
        group=group,
        subject=subject,
        text=text,
        severity=exception.get("severity"),
        exception_type=exception.get("exceptionType"),
        status=status,
        facts={"tenant": ctx.tenant.tenantName, "group": group, **(facts or {})},
    )


async def deliver(ctx: RunContext, notice: Notice) -> list[DeliveryResult]:
    """Route and deliver ``notice``; an unexpected notifier error becomes a failed result."""
    policies = ctx.tenant.notificationPolicies
    try:
        return await ctx.notifier.notify(notice, policies)
    except Exception as exc:  # a notifier bug must not take the case down with it
        return [
            DeliveryResult(
                Delivery(channel="none", kind="email"), "FAILED", error=f"{type(exc).__name__}: {exc}"
            )
        ]


def delivery_events(
    ctx: RunContext, stage: Stage, notice: Notice, results: list[DeliveryResult], **extra: Any
) -> list[AuditEvent]:
    return [
        audit_event(
            ctx, stage, f"notification_{result.status.lower()}",
            {"event": notice.event, "group": notice.group, "subject": notice.subject, **extra,
             **result.as_audit()},
            actor=SYSTEM,
        )
        for result in results
    ]  # fmt: skip


async def notify(ctx: RunContext, stage: Stage, notice: Notice) -> list[AuditEvent]:
    """Send ``notice`` when the tenant's ``notifyOn`` asks for its event; the audit events it made."""
    if not should_notify(notice.event, ctx.tenant.notificationPolicies):
        return []
    return delivery_events(ctx, stage, notice, await deliver(ctx, notice))
