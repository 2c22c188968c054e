"""A case's playbook as operators see it, and recalculating the choice against the packs active now.

Everything is read from the graph's state (the checkpoint): it holds the policy decision with its
reasoning and candidates, the playbook and the plan with who did each step; the tables hold only part
of that. Recalculation is the policy rules alone (``decide_policy``, no LLM) on the triaged record, so
running it twice gives the same answer and the second run records nothing. It may change a case only
before anything ran: the plan a person is asked to approve is replaced in the graph's state and the
approval node asks again, so the same approval (same id, same deadline) now shows the new plan. It
never removes the approval gate: a person who was going to decide still decides.

A recalculation that changes the choice is an answer like any other: it claims the approval (so a
decision arriving meanwhile is a 409 instead of approving a plan that is changing under it) and its
job swaps the plan (``apply_recalculation``); the request waits for the job like a decision does.
"""

from __future__ import annotations

from typing import Any

from app.api.problems import ProblemError
from app.cases.service import CaseService
from app.jobs.base import plan_digest
from app.jobs.claims import Claim
from app.runtime import ConfigurationError, Runtime
from graph.context import RunContext
from graph.nodes.policy import policy_record
from graph.nodes.triage import condition_facts
from graph.plans import allowed_decisions, build_plan, find_playbook
from graph.records import actor, audit_event
from graph.runner import CaseRunner, config_for
from packs.common import FINISHED_STATUSES
from packs.policy import decide_policy

STEP_EVENTS = frozenset({"playbook_step_completed", "playbook_step_skipped", "playbook_step_failed"})
NOT_STARTED = "the playbook can only change before execution starts"


def _step_events(values: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The last completed/skipped/failed event of each step order (who did it, and when)."""
    found: dict[int, dict[str, Any]] = {}
    for event in values.get("audit", []):
        order = event.get("data", {}).get("order")
        if event["type"] in STEP_EVENTS and isinstance(order, int):
            found[order] = event
    return found


def step_views(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Each planned step with its status; a pending step held for approval shows NEEDS_APPROVAL."""
    events = _step_events(values)
    steps = []
    for item in values.get("plan") or []:
        status = item.get("status", "PENDING")
        if status == "PENDING" and item.get("disposition") == "needs_approval":
            status = "NEEDS_APPROVAL"
        event = events.get(item["order"]) if status != "PENDING" else None
        who = (event or {}).get("actor") or {}
        steps.append(
            {
                "order": item["order"], "type": item["type"], "name": item["name"],
                "disposition": item["disposition"], "reason": item.get("reason"), "status": status,
                "completedBy": item.get("completedBy") or who.get("id"), "actorType": who.get("type"),
                "completedAt": (event or {}).get("at"), "notes": item.get("notes"),
                "skipReason": item.get("skipReason"), "definition": item.get("step", {}),
                "instructions": item.get("instructions") or item.get("step", {}).get("instructions"),
            }
        )  # fmt: skip
    return steps


def _playbook_info(values: dict[str, Any]) -> dict[str, Any]:
    policy = values.get("policy") or {}
    playbook = values.get("playbook")
    approval = values.get("approval") or {}
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


def selection_of(policy: dict[str, Any]) -> dict[str, Any]:
    keys = ("actionability", "selectedPlaybookId", "recommendedPlaybookId", "reasoning", "candidates")
    return {key: policy.get(key) for key in keys} | {"candidates": policy.get("candidates") or []}


def playbook_view(
    tenant_id: str, exception_id: str, values: dict[str, Any], pending: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The operator's view of a case's playbook; None when the case has no playbook and no plan."""
    if not values.get("playbook") and not values.get("plan"):
        return None
    plan = values.get("plan") or []
    cursor = values.get("cursor", 0)
    status = values.get("status", "OPEN")
    current = plan[cursor]["order"] if cursor < len(plan) and status not in FINISHED_STATUSES else None
    kind = (pending or {}).get("kind")
    return {
        "exceptionId": exception_id, "tenantId": tenant_id, "resolutionStatus": status,
        "playbook": _playbook_info(values), "steps": step_views(values), "currentStep": current,
        "waitingFor": kind, "approvalId": (pending or {}).get("approvalId") if kind == "approval" else None,
        "selection": selection_of(values.get("policy") or {}), "planDigest": plan_digest(plan),
    }  # fmt: skip


def decide_now(ctx: RunContext, values: dict[str, Any]) -> dict[str, Any]:
    """Playbook matching for the triaged record (type, severity, payload, context) under ``ctx``'s packs."""
    exception = values["exception"]
    decision = decide_policy(
        ctx.domain, ctx.tenant, exception_type=exception["exceptionType"], severity=exception["severity"],
        confidence=values.get("confidence", 0.0), data=condition_facts(exception, ctx),
        sla_minutes_remaining=exception["normalizedContext"].get("slaMinutesRemaining"),
    )  # fmt: skip
    return policy_record(decision)


def _choice(policy: dict[str, Any]) -> tuple[Any, ...]:
    return policy.get("actionability"), policy.get("selectedPlaybookId"), policy.get("recommendedPlaybookId")


def _replanned(ctx: RunContext, values: dict[str, Any], new: dict[str, Any], who: str) -> dict[str, Any]:
    """The state update that swaps in the new decision, playbook and plan, and re-asks the approval."""
    approved = new["actionability"] == "ACTIONABLE_APPROVED_PROCESS"
    playbook = find_playbook(ctx, new["selectedPlaybookId"] if approved else new["recommendedPlaybookId"])
    plan = build_plan(ctx, playbook, values["exception"]) if playbook is not None else []
    old = values["policy"]
    data = {"actor": who, "previous": {k: old.get(k) for k in ("actionability", "selectedPlaybookId", "recommendedPlaybookId")},
            "current": {k: new[k] for k in ("actionability", "selectedPlaybookId", "recommendedPlaybookId")},
            "reasoning": new["reasoning"], "steps": len(plan)}  # fmt: skip
    note = (
        f"playbook recalculated by {who}: {old.get('recommendedPlaybookId')} → {new['recommendedPlaybookId']}"
    )
    request = dict(values["approvalRequest"])
    request |= {
        "what": f"Run playbook {playbook.id}" if playbook else "Decide how to resolve this exception",
        "why": [*request.get("why", []), note], "actionability": new["actionability"],
        "playbookId": playbook.id if playbook else None, "draft": None, "plan": plan,
        "allowedDecisions": allowed_decisions(plan),
    }  # fmt: skip
    exception = {**values["exception"], "suggestedActions": [item["name"] for item in plan]}
    event = audit_event(ctx, "policy", "playbook_recalculated", data, actor=actor("human", who))
    return {
        "policy": new, "playbook": playbook.model_dump(mode="json", exclude_none=True) if playbook else None,
        "plan": plan, "cursor": 0, "draft": None, "approvalRequest": request, "exception": exception,
        "audit": [event],
    }  # fmt: skip


def _started(values: dict[str, Any]) -> bool:
    return values.get("cursor", 0) > 0 or any(i.get("status") != "PENDING" for i in values.get("plan") or [])


async def recalculate(
    cases: CaseService, runner: CaseRunner, runtime: Runtime, tenant_id: str, exception_id: str, *, who: str
) -> dict[str, Any]:
    """Re-run playbook matching; replace the plan only while the case waits for its approval.

    The checks are made here first (nothing changes: answered at once, nothing recorded), then again
    by the job under the case's serialization, which is what decides. Raises ``StillRunning`` when
    the job takes longer than the request may wait."""
    values = await runner.values(tenant_id, exception_id)
    if not values.get("policy"):
        raise ProblemError(409, f"case {exception_id} has no policy decision to recalculate")
    try:
        ctx = runtime.context(tenant_id, run_id="recalculate")
    except (ConfigurationError, LookupError) as exc:
        raise ProblemError(409, str(exc)) from None
    new = decide_now(ctx, values)
    if _choice(new) == _choice(values["policy"]):
        return {"changed": False, "previous": selection_of(values["policy"]), "current": selection_of(new),
                "packVersions": ctx.pack_versions}  # fmt: skip
    if _started(values):
        raise ProblemError(409, f"{NOT_STARTED}: steps of case {exception_id} already ran")
    pending = await runner.pending(tenant_id, exception_id)
    if pending is None or pending.get("kind") != "approval" or not values.get("approvalRequest"):
        raise ProblemError(409, f"{NOT_STARTED}: case {exception_id} is not waiting for its approval")
    outcome = await cases.claim_for_recalculation(
        tenant_id, values["approvalRequest"]["approvalId"], actor=who
    )
    return dict(outcome["recalculation"])


async def apply_recalculation(cases: CaseService, claim: Claim) -> None:
    """The job's side of a recalculation: decide again under the packs active now and, if the choice
    changed and nothing ran yet, swap the plan and let the approval node ask again; then record it
    and give the approval back (PENDING, with the new plan). Run twice, the second run finds the
    choice unchanged and records nothing new."""
    runner, tenant_id, exception_id = cases.runner, claim.tenant_id, claim.exception_id
    values = await runner.values(tenant_id, exception_id)
    try:
        ctx = cases.runtime.context(tenant_id, run_id="recalculate")
    except (ConfigurationError, LookupError) as exc:
        await cases.release(claim, {"status": 409, "detail": str(exc)})
        return
    if not values.get("policy"):
        await cases.release(claim, {"status": 409, "detail": f"case {exception_id} has no policy decision"})
        return
    new = decide_now(ctx, values)
    out = {"previous": selection_of(values["policy"]), "current": selection_of(new),
           "packVersions": ctx.pack_versions}  # fmt: skip
    if _choice(new) == _choice(values["policy"]):  # nothing to change (or an earlier try changed it)
        outcome = await runner.outcome(tenant_id, exception_id)
        await cases.record_and_settle(claim, outcome, applied=False, payload=values.get("approvalRequest"),
                                      result={"status": 200, "recalculation": {"changed": False, **out}})  # fmt: skip
        return
    pending = await runner.pending(tenant_id, exception_id)
    if _started(values) or pending is None or pending.get("approvalId") != claim.key:
        detail = f"{NOT_STARTED}: case {exception_id} is not waiting for its approval"
        await cases.release(claim, {"status": 409, "detail": detail})
        return
    update_state = _replanned(ctx, values, new, claim.claimed_by)
    await _apply(runner, ctx, exception_id, update_state)
    outcome = await runner.outcome(tenant_id, exception_id)
    await cases.record_and_settle(claim, outcome, applied=False, payload=update_state["approvalRequest"],
                                  result={"status": 200, "recalculation": {"changed": True, **out}})  # fmt: skip


def install(cases: CaseService) -> None:
    """Let the case service's answer jobs apply recalculations (kept here, with the rest of them)."""
    cases.recalculator = apply_recalculation


async def _apply(runner: CaseRunner, ctx: RunContext, exception_id: str, values: dict[str, Any]) -> None:
    """Write the update as if the supervisor had decided it, then run on: the approval node interrupts
    again with the new request."""
    config = config_for(ctx.tenant.tenantId, exception_id, ctx.run_id)
    await runner.graph.aupdate_state(config, values, as_node="supervisor")
    await runner.invoke(None, config, ctx)  # a crash still escalates the case, as in any run
