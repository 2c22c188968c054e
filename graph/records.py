"""Building the agent decisions and audit events every node appends to the state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graph.context import RunContext
from graph.state import ActorType, AgentDecision, AuditEvent, Evidence, EvidenceKind, Stage

AGENT = {"type": "agent", "id": "exops"}
SYSTEM = {"type": "system", "id": "exops"}


def evidence(kind: EvidenceKind, detail: str) -> Evidence:
    return {"kind": kind, "detail": detail}


def audit_event(
    ctx: RunContext,
    stage: Stage,
    event_type: str,
    data: Mapping[str, Any],
    *,
    actor: Mapping[str, str] | None = None,
) -> AuditEvent:
    return {
        "type": event_type,
        "stage": stage,
        "actor": dict(actor or AGENT),
        "at": ctx.now_iso(),
        "packVersions": ctx.pack_versions,
        "data": dict(data),
    }


def actor(actor_type: ActorType, actor_id: str) -> dict[str, str]:
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
    """The state update recording a node's decision, in ``decisions`` and in the audit trail."""
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
