"""Everything the exception detail page shows, gathered in one place so the route stays thin.

Everything comes from the system of record (``app.cases.record``), for a waiting case as for a
finished one (whose checkpoints are gone): the stage decisions are the ``stage_decision`` events,
the plan and the policy's selection are the playbook row, what the case waits for is the case row's
latest result, and the events and tool executions are their own tables. The page's poll value is
built here too, from the same table reads as ``status.json``, so the page and its poller always
agree on what "changed" means.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.queries import events
from app.cases.record import CaseRecord, playbook_view
from app.db.models import ExceptionCase, ExceptionEvent, PlaybookState, ToolExecution
from app.runtime import ConfigurationError
from app.ui.actions import plan_digest
from app.ui.deps import Page, UiError

MAIN_STAGES = ("intake", "triage", "policy", "supervisor", "resolution", "feedback")
"""The path every case is meant to take; approval, execute, human_step and escalate are visits on the way."""
LABELS = {
    "intake": "Intake", "triage": "Triage", "policy": "Policy", "supervisor": "Supervisor",
    "resolution": "Resolution", "approval": "Approval", "execute": "Execute", "human_step": "Human step",
    "feedback": "Feedback", "escalate": "Escalate",
}  # fmt: skip
MAX_EVENTS = 1000


@dataclass(frozen=True)
class CaseView:
    """The detail page's content; each field feeds one section of exception.html."""

    case: ExceptionCase
    facts: dict[str, Any]
    stages: list[dict[str, Any]]
    events: list[dict[str, Any]]
    events_total: int
    playbook: dict[str, Any] | None
    policy: dict[str, Any]
    pending: dict[str, Any] | None
    approval: dict[str, Any] | None
    tools: list[ToolExecution]
    similar: dict[str, Any]
    """The Similar cases panel (``similar_panel``)."""
    poll_value: str
    polling: bool


def poll_value(case: ExceptionCase, event_count: int) -> str:
    """What ``status.json`` answers and the page remembers: any change means the page is stale."""
    return f"{case.status}|{case.processing}|{event_count}"


async def load_case(session: AsyncSession, tenant_id: str, exception_id: str) -> ExceptionCase:
    case = await session.get(ExceptionCase, (tenant_id, exception_id))
    if case is None:
        raise UiError(404, f"no exception {exception_id} for tenant {tenant_id}")
    return case


def stage_timeline(decisions: list[dict[str, Any]], pending: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each stage visit in the order it happened, what the case waits on now, then the stages it never reached."""
    entries: list[dict[str, Any]] = [
        {"stage": d["stage"], "label": LABELS.get(d["stage"], d["stage"]), "state": "done",
         "decision": d.get("decision"), "confidence": d.get("confidence"), "nextStep": d.get("nextStep"),
         "at": d.get("at"), "evidence": d.get("evidence") or []}
        for d in decisions
    ]  # fmt: skip
    if pending is not None:
        stage = "approval" if pending.get("kind") == "approval" else "human_step"
        waiting = (
            f"waiting for a decision on approval {pending.get('approvalId')}"
            if stage == "approval"
            else f"waiting for a person to do step {pending.get('order')}: {pending.get('name')}"
        )
        entries.append({"stage": stage, "label": LABELS[stage], "state": "current", "waiting": waiting,
                        "evidence": []})  # fmt: skip
    visited = {entry["stage"] for entry in entries}
    entries += [
        {"stage": stage, "label": LABELS[stage], "state": "not_reached", "evidence": []}
        for stage in MAIN_STAGES
        if stage not in visited
    ]
    return entries


def _kinds(row: ExceptionEvent) -> list[tuple[str, str]]:
    """Badges (text, css class) that set playbook, approval, tool and human events apart."""
    kinds: list[tuple[str, str]] = []
    if row.type.startswith("playbook_"):
        kinds.append(("playbook", "kind-playbook"))
    elif row.type.startswith("approval_"):
        kinds.append(("approval", "kind-approval"))
    elif row.type in ("tool_call", "rollback"):
        kinds.append(("tool", "kind-tool"))
    elif row.type.startswith("notification_"):
        kinds.append(("notification", ""))
    if row.actor_type == "human":
        kinds.append(("human", "kind-human"))
    return kinds


def describe(kind: str, data: dict[str, Any]) -> str:
    """One readable line for an event; the full data stays one click away on the page."""
    if kind == "stage_decision":
        return f"{data.get('decision')} (confidence {data.get('confidence')}) → next: {data.get('nextStep')}"
    if kind in ("tool_call", "rollback"):
        text = f"{data.get('tool')}: {data.get('status')} ({data.get('mode')}), {data.get('attempts')} attempt(s)"
        return text + (f" — {data['error']}" if data.get("error") else "")
    if kind.startswith("notification_"):
        return f"{data.get('event')} notice to {data.get('group')}: {data.get('subject')}"
    if kind == "approval_requested":
        return f"{data.get('approvalId')}: {data.get('what')}"
    if kind == "approval_decided":
        who = (data.get("actor") or {}).get("id")
        said = "; ".join(str(data[key]) for key in ("reason", "comment") if data.get(key))
        return f"{data.get('decision')} by {who}" + (f": {said}" if said else "")
    if kind == "case_taken_over":
        return f"{data.get('owner')} took the case over" + (
            f": {data['comment']}" if data.get("comment") else ""
        )
    if kind == "approval_comment":
        return f"{data.get('actor')}: {data.get('comment')}"
    if kind.startswith("playbook_step_"):
        text = f"step {data.get('order')} {data.get('name')}"
        extra = data.get("notes") or data.get("detail")
        why = f" — skipped because: {data['reason']}" if data.get("reason") else ""
        return text + why + (f" — {extra}" if extra else "")
    if kind in ("playbook_started", "playbook_completed"):
        steps = f" ({data['steps']} steps)" if data.get("steps") else ""
        return f"playbook {data.get('playbookId')}{steps}"
    shown = [
        f"{key}: {value}"
        for key, value in data.items()
        if isinstance(value, str | int | float) and value != ""
    ]
    return ", ".join(shown[:4])


def event_entry(row: ExceptionEvent) -> dict[str, Any]:
    data = row.data or {}
    notification = None
    if row.type.startswith("notification_"):
        notification = {"channel": data.get("channel"), "status": data.get("status"),
                        "recipients": list(data.get("recipients") or []), "error": data.get("error")}  # fmt: skip
    return {"seq": row.seq, "at": row.at, "type": row.type, "stage": row.stage, "actorType": row.actor_type,
            "actorId": row.actor_id, "kinds": _kinds(row), "summary": describe(row.type, data),
            "notification": notification, "data": data}  # fmt: skip


def approval_box(pending: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pending approval with the digest and YAML of the plan exactly as shown to the approver."""
    if pending is None or pending.get("kind") != "approval":
        return None
    plan: list[dict[str, Any]] = pending.get("plan") or []
    steps = [item.get("step", item) for item in plan]
    return {
        "approvalId": pending.get("approvalId"), "what": pending.get("what"), "why": pending.get("why") or [],
        "evidence": pending.get("evidence") or [], "deadline": pending.get("deadline"),
        "requestedAt": pending.get("requestedAt"), "actionability": pending.get("actionability"),
        "plan": plan, "comments": pending.get("comments") or [], "refusals": pending.get("refusals") or [],
        "digest": plan_digest(plan),
        "planYaml": yaml.safe_dump(steps, sort_keys=False, allow_unicode=True) if steps else "",
    }  # fmt: skip


async def similar_panel(page: Page, case: ExceptionCase) -> dict[str, Any]:
    """The Similar cases panel: the tenant's past cases like this one (never embedding anything here:
    the case's text was embedded by triage and is read from the cache), or why there are none."""
    memory = page.services.runtime.memory
    if memory is None:
        return {"state": "off", "items": [], "note": "Similar-case memory is off on this server."}
    from app.memory.service import MemoryUnavailable
    from app.memory.store import ModelChanged
    from app.memory.views import query_of

    try:
        found = await memory.search(page.tenant_id, query_of(case), k=5, exclude={case.exception_id},
                                    cached_only=True)  # fmt: skip
    except (MemoryUnavailable, ModelChanged) as exc:
        return {"state": "unavailable", "items": [], "note": f"Similar cases unavailable: {exc}."}
    except (ConfigurationError, LookupError) as exc:
        return {"state": "unavailable", "items": [], "note": f"Similar cases unavailable: {exc}."}
    return {"state": "on", "items": found, "note": "" if found else "No similar past case."}


def _facts(case: ExceptionCase) -> dict[str, Any]:
    exception = case.record or {}
    raw = case.raw.get("rawPayload", {})
    claims = exception.get("sourceClaims")
    return {
        "type": case.exception_type or case.reported_type, "severity": case.severity, "status": case.status,
        "actionability": case.actionability, "group": case.assigned_group, "owner": exception.get("owner"),
        "confidence": case.confidence, "received": case.received_at, "updated": case.updated_at,
        "source": case.source_system, "summary": case.summary,
        "processing": case.processing, "raw": json.dumps(raw, indent=2, ensure_ascii=False, default=str),
        "reported_type": exception.get("reportedType"), "reported_from": exception.get("reportedTypeFrom"),
        "source_claims": json.dumps(claims, indent=2, ensure_ascii=False, default=str) if claims else None,
    }  # fmt: skip


async def case_view(page: Page, exception_id: str) -> CaseView:
    services, tenant_id = page.services, page.tenant_id
    async with services.db.session() as session:
        case = await load_case(session, tenant_id, exception_id)
        rows, total = await events(session, tenant_id, exception_id, limit=MAX_EVENTS)
        tools = (
            await session.execute(
                select(ToolExecution)
                .where(ToolExecution.tenant_id == tenant_id, ToolExecution.exception_id == exception_id)
                .order_by(ToolExecution.id)
            )
        ).scalars()
        tool_rows = list(tools.all())
        playbook_row = await session.get(PlaybookState, (tenant_id, exception_id))
    record = CaseRecord(case, playbook_row, rows)
    pending = record.pending
    return CaseView(
        case=case, facts=_facts(case), stages=stage_timeline(record.decisions, pending),
        events=[event_entry(row) for row in rows], events_total=total, playbook=playbook_view(record),
        policy=record.selection if playbook_row else {}, pending=pending, approval=approval_box(pending),
        tools=tool_rows,
        similar=await similar_panel(page, case), poll_value=poll_value(case, total), polling=case.processing != "done",
    )  # fmt: skip


async def status_value(page: Page, exception_id: str) -> str:
    async with page.services.db.session() as session:
        case = await load_case(session, page.tenant_id, exception_id)
        _, total = await events(session, page.tenant_id, exception_id, limit=1)
    return poll_value(case, total)
