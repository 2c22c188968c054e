"""A case as the system of record holds it: what the projection writes and every read path reads.

The checkpoint holds what the graph needs to continue a case, and is gone once a finished case is
compacted; the tables hold what people and the API read, for every case. So the read paths (the
case API, the playbook API, the UI's case page) read these rows, never the graph's state:

* ``exceptions``: the case row, its canonical record and its result (the pending request included);
  the result is stored without its ``stages`` (the ``stage_decision`` events) and its ``plan`` (the
  playbook row's steps), which are put back on read (``result_of``);
* ``exception_events``: the audit trail, written once by the event sink (``app.cases.events``);
* ``playbook_states``: the plan with each step's status, the playbook as operators see it (the
  chosen one, or an edited plan, or a takeover), and the policy's selection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ExceptionCase, ExceptionEvent, PlaybookState
from app.jobs.base import plan_digest
from packs.common import FINISHED_STATUSES

STEP_EVENTS = ("playbook_step_completed", "playbook_step_skipped", "playbook_step_failed")
STAGE_KEYS = ("stage", "decision", "confidence", "nextStep", "evidence")
PLAN_KEYS = ("order", "type", "name", "disposition", "status", "reason")
STORED_APART = ("stages", "plan")
"""Result fields kept elsewhere in the tables (the stage decisions are events, the plan is the playbook
row's), added back on read."""


def stored_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """The result as the case row keeps it (see ``STORED_APART``)."""
    return {key: value for key, value in result.items() if key not in STORED_APART}


def stages_of(decisions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A result's ``stages`` from the stage decisions (the ``stage_decision`` events' data)."""
    return [{key: decision.get(key) for key in STAGE_KEYS} for decision in decisions]


def result_of(
    case: ExceptionCase, decisions: Iterable[Mapping[str, Any]], playbook: PlaybookState | None
) -> dict[str, Any] | None:
    """The case's latest result as runs return it, its stages put back from ``decisions`` and its plan
    from the playbook row."""
    if case.result is None:
        return None
    plan = [{key: item.get(key) for key in PLAN_KEYS} for item in (playbook.steps if playbook else [])]
    return {**case.result, "stages": stages_of(decisions), "plan": plan}


def selection_of(policy: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("actionability", "selectedPlaybookId", "recommendedPlaybookId", "reasoning", "candidates")
    return {key: policy.get(key) for key in keys} | {"candidates": policy.get("candidates") or []}


def playbook_info(values: Mapping[str, Any]) -> dict[str, Any] | None:
    """The playbook as operators see it, from the graph's state: the one chosen (or drafted), the plan a
    person wrote at approval, or a takeover. None when the case has neither playbook nor plan."""
    policy = values.get("policy") or {}
    playbook = values.get("playbook")
    approval = values.get("approval") or {}
    if not playbook and not values.get("plan"):
        return None
    if approval.get("decision") == "takeover":  # a person handles the case by hand
        who = (approval.get("actor") or {}).get("id", "a person")
        instead = f" instead of playbook {playbook['id']}" if playbook else ""
        return {"id": "TAKEOVER", "name": "Taken over by a person", "version": None,
                "description": f"{who} took the case over and handles it by hand{instead}",
                "approvedForTenant": False, "origin": "takeover", "appliesTo": [], "match": {}, "priority": None,
                "successCriteria": []}  # fmt: skip
    if not playbook or approval.get("editedPlan") is not None:  # a person's steps, written at approval
        who = (approval.get("actor") or {}).get("id", "a person")
        instead = f" in place of playbook {playbook['id']}" if playbook else ""
        return {"id": "EDITED", "name": "Plan edited at approval", "version": None,
                "description": f"Steps written by {who} when approving{instead}", "approvedForTenant": False,
                "origin": "edited", "appliesTo": [], "match": {}, "priority": None, "successCriteria": []}  # fmt: skip
    origins = {c["playbookId"]: c["origin"] for c in policy.get("candidates") or []}
    drafted = (values.get("draft") or {}).get("id") == playbook["id"]
    return {
        "id": playbook["id"], "name": playbook["name"], "version": playbook.get("version"),
        "description": playbook.get("description", ""),
        "approvedForTenant": policy.get("selectedPlaybookId") == playbook["id"] and not drafted,
        "origin": "llm_draft" if drafted else origins.get(playbook["id"]), "appliesTo": playbook.get("appliesTo", []),
        "match": playbook.get("match", {}), "priority": playbook.get("priority"),
        "successCriteria": playbook.get("successCriteria", []),
    }  # fmt: skip


def step_views(
    plan: Iterable[Mapping[str, Any]], step_events: Mapping[int, ExceptionEvent]
) -> list[dict[str, Any]]:
    """Each planned step with its status (a pending step held for approval shows NEEDS_APPROVAL), and
    who finished it and when, from its last completed/skipped/failed event."""
    steps = []
    for item in plan:
        status = item.get("status", "PENDING")
        if status == "PENDING" and item.get("disposition") == "needs_approval":
            status = "NEEDS_APPROVAL"
        event = step_events.get(item["order"]) if status != "PENDING" else None
        steps.append(
            {
                "order": item["order"], "type": item["type"], "name": item["name"],
                "disposition": item["disposition"], "reason": item.get("reason"), "status": status,
                "completedBy": item.get("completedBy") or (event.actor_id if event else None),
                "actorType": event.actor_type if event else None,
                "completedAt": event.at.isoformat() if event else None, "notes": item.get("notes"),
                "skipReason": item.get("skipReason"), "definition": item.get("step", {}),
                "instructions": item.get("instructions") or item.get("step", {}).get("instructions"),
            }
        )  # fmt: skip
    return steps


@dataclass
class CaseRecord:
    """One case's rows, as the read paths need them."""

    case: ExceptionCase
    playbook: PlaybookState | None
    events: list[ExceptionEvent] = field(default_factory=list)
    """Only the kinds asked for when loaded (``load_record``)."""

    @property
    def pending(self) -> dict[str, Any] | None:
        """What the case waits on (an approval or a manual step), as of its last projection."""
        if self.case.processing != "waiting":
            return None
        pending = (self.case.result or {}).get("pending")
        return pending if isinstance(pending, dict) else None

    @property
    def decisions(self) -> list[dict[str, Any]]:
        return [event.data for event in self.events if event.type == "stage_decision"]

    @property
    def step_events(self) -> dict[int, ExceptionEvent]:
        found: dict[int, ExceptionEvent] = {}
        for event in self.events:
            order = (event.data or {}).get("order")
            if event.type in STEP_EVENTS and isinstance(order, int):
                found[order] = event
        return found

    @property
    def selection(self) -> dict[str, Any]:
        return selection_of((self.playbook.selection if self.playbook else None) or {})


async def load_record(
    session: AsyncSession, tenant_id: str, exception_id: str, *, event_types: Iterable[str] = ()
) -> CaseRecord | None:
    case = await session.get(ExceptionCase, (tenant_id, exception_id))
    if case is None:
        return None
    playbook = await session.get(PlaybookState, (tenant_id, exception_id))
    kinds = list(event_types)
    events: list[ExceptionEvent] = []
    if kinds:
        rows = await session.execute(
            select(ExceptionEvent)
            .where(
                ExceptionEvent.tenant_id == tenant_id,
                ExceptionEvent.exception_id == exception_id,
                ExceptionEvent.type.in_(kinds),
            )
            .order_by(ExceptionEvent.seq)
        )
        events = list(rows.scalars())
    return CaseRecord(case, playbook, events)


def playbook_view(record: CaseRecord) -> dict[str, Any] | None:
    """The operator's view of a case's playbook; None when the case has no playbook and no plan."""
    row = record.playbook
    if row is None or row.playbook is None:
        return None
    case = record.case
    plan = row.steps or []
    pending = record.pending
    kind = (pending or {}).get("kind")
    current = row.current_step if case.status not in FINISHED_STATUSES else None
    return {
        "exceptionId": case.exception_id, "tenantId": case.tenant_id, "resolutionStatus": case.status,
        "playbook": row.playbook, "steps": step_views(plan, record.step_events), "currentStep": current,
        "waitingFor": kind, "approvalId": (pending or {}).get("approvalId") if kind == "approval" else None,
        "selection": record.selection, "planDigest": plan_digest(plan),
    }  # fmt: skip
