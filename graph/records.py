"""Building the agent decisions every node appends to the state, and the audit events it records.

A node returns its audit events under ``"audit"`` in its update; that key is not state: the node
wrapper (``graph.builder``) takes the events out and hands them to the run's event sink
(``graph.events``), so the checkpoint never carries the audit trail."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graph.context import RunContext
from graph.state import Actor, ActorType, AgentDecision, AuditEvent, Evidence, EvidenceKind, Stage

AGENT: Actor = {"type": "agent", "id": "exops"}
SYSTEM: Actor = {"type": "system", "id": "exops"}


def evidence(kind: EvidenceKind, detail: str) -> Evidence:
    return {"kind": kind, "detail": detail}


def audit_event(
    ctx: RunContext,
    stage: Stage,
    event_type: str,
    data: Mapping[str, Any],
    *,
    actor: Actor | None = None,
) -> AuditEvent:
    who = actor or AGENT
    return {
        "type": event_type,
        "stage": stage,
        "actor": {"type": who["type"], "id": who["id"]},
        "at": ctx.now_iso(),
        "packVersions": ctx.pack_versions,
        "data": dict(data),
    }


def actor(actor_type: ActorType, actor_id: str) -> Actor:
    return {"type": actor_type, "id": actor_id}


def decision_update(
    ctx: RunContext,
    stage: Stage,
    decision: str,
    confidence: float,
    facts: Iterable[Evidence],
    next_step: str,
    *,
    extra_audit: Iterable[AuditEvent] = (),
) -> dict[str, Any]:
    """The update recording a node's decision: once in the state's ``decisions``, and as a
    ``stage_decision`` event (after ``extra_audit``) for the audit trail."""
    record: AgentDecision = {
        "stage": stage,
        "decision": decision,
        "confidence": round(confidence, 3),
        "evidence": list(facts),
        "nextStep": next_step,
        "at": ctx.now_iso(),
    }
    event = audit_event(ctx, stage, "stage_decision", dict(record))
    return {"decisions": [record], "audit": [*extra_audit, event]}


def merge_updates(*updates: Mapping[str, Any]) -> dict[str, Any]:
    """Combine node updates, concatenating the append-only lists."""
    merged: dict[str, Any] = {}
    for update in updates:
        for key, value in update.items():
            if key in ("decisions", "audit") and key in merged:
                merged[key] = [*merged[key], *value]
            else:
                merged[key] = value
    return merged
