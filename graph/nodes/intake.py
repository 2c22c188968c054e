"""Intake: the raw input as a canonical exception record, with its type checked against the taxonomy."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graph.context import RunContext
from graph.inputs import CONTEXT_KEYS_WE_DECIDE, RawException
from graph.nodes.llm_support import LlmFailure, ask, call_audit
from graph.records import audit_event, decision_update, evidence
from graph.state import AuditEvent, CaseState, Evidence, ExceptionRecord, TypeCheckRecord
from packs.decisions import TypeCheck, case_data, classify_type, sla_minutes_remaining
from packs.domain import DomainPack
from prompts.outputs import classification_model
from prompts.registry import render_prompt

LLM_CLASSIFICATION_CAP = 0.85
"""An LLM-classified type is never more certain than this: it is advice, not a fact from the source."""


def normalize_context(domain: DomainPack, exception_type: str | None, raw: RawException) -> dict[str, Any]:
    """The payload read through the type's entity: known attributes, and required ones missing.

    The source's own ``normalizedContext`` is the starting point (its facts, such as
    ``slaMinutesRemaining``, can be read by conditions), except the keys intake decides itself."""
    context: dict[str, Any] = {
        key: value for key, value in raw.normalizedContext.items() if key not in CONTEXT_KEYS_WE_DECIDE
    }
    definition = domain.exceptionTypes.get(exception_type or "")
    entity_name = definition.entity if definition else None
    entity = domain.entities.get(entity_name or "")
    if entity_name and entity is not None:
        context["entity"] = entity_name
        context["attributes"] = {k: raw.rawPayload[k] for k in entity.attributes if k in raw.rawPayload}
        context["missingRequired"] = [
            k for k, a in entity.attributes.items() if a.required and k not in raw.rawPayload
        ]
    return context


async def _classify_with_llm(
    runtime: Runtime[RunContext], raw: RawException, check: TypeCheck
) -> tuple[TypeCheck, float | None, list[Evidence], list[AuditEvent]]:
    ctx = runtime.context
    llm = ctx.llm
    assert llm is not None
    types = list(ctx.domain.exceptionTypes)
    prompt = render_prompt(
        "type_classification",
        domain=ctx.domain,
        reported_type=raw.reported_type()[0],
        source_system=raw.sourceSystem,
        payload=raw.rawPayload,
        candidates=list(check.candidates),
    )
    model = classification_model(types)
    answer = await ask(runtime, lambda: llm.structured(prompt, model))
    attempt = runtime.execution_info.node_attempt if runtime.execution_info else None
    if isinstance(answer, LlmFailure):
        event = audit_event(ctx, "intake", "llm_call", call_audit(answer.call, attempt))
        return check, None, [evidence("llm", f"LLM classification failed: {answer.describe()}")], [event]
    event = audit_event(ctx, "intake", "llm_call", call_audit(answer.call, attempt))
    value = answer.value
    chosen = str(getattr(value, "exceptionType", "UNKNOWN"))
    confidence = float(getattr(value, "confidence", 0.0))
    rationale = str(getattr(value, "rationale", ""))
    if chosen == "UNKNOWN" or chosen not in ctx.domain.exceptionTypes:
        return check, None, [evidence("llm", f"LLM could not place it in the taxonomy: {rationale}")], [event]
    classified = TypeCheck(chosen, "detected", f"LLM classified it as {chosen}: {rationale}")
    capped = max(0.0, min(confidence, LLM_CLASSIFICATION_CAP))
    return (
        classified,
        capped,
        [evidence("llm", f"LLM classified as {chosen} (confidence {capped:.2f}): {rationale}")],
        [event],
    )


async def intake(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    raw = RawException.model_validate(state["raw"])
    domain, tenant = ctx.domain, ctx.tenant
    common: dict[str, Any] = {
        "tenant_id": tenant.tenantId,
        "domain_name": domain.domainName,
        "raw_payload": raw.rawPayload,
        "normalized_context": raw.normalizedContext,
        "source_system": raw.sourceSystem,
        "policy_tags": tenant.policyTags,
    }
    reported, reported_from = raw.reported_type()
    check = classify_type(domain, reported, case_data(exception_type=reported, **common))
    facts = [evidence("taxonomy", check.reason), *(evidence("input", notice) for notice in raw.notices)]
    if reported_from is not None and reported_from != "exceptionType":
        facts.insert(
            0,
            evidence(
                "input", f"type {reported!r} read from {reported_from}: the record has no exceptionType"
            ),
        )
    claims = raw.source_claims()
    if claims:
        facts.append(
            evidence(
                "input",
                f"the source sent its own {', '.join(sorted(claims))}: kept under sourceClaims as what it "
                "said; exops decides these itself",
            )
        )
    confidence: float | None = check.confidence if check.exception_type else None
    audit: list[AuditEvent] = []
    if check.exception_type is None and ctx.llm is not None:
        check, confidence, llm_facts, audit = await _classify_with_llm(runtime, raw, check)
        facts.extend(llm_facts)
    elif check.exception_type is None:
        facts.append(evidence("llm", "no LLM is configured to classify it: a person must"))
    received = ctx.clock()
    timestamp = raw.timestamp or received
    context = normalize_context(domain, check.exception_type, raw)
    if check.exception_type is not None:
        remaining = sla_minutes_remaining(
            tenant,
            check.exception_type,
            given=context.get("slaMinutesRemaining"),
            timestamp=timestamp,
            now=received,
        )
        if remaining is not None:
            context["slaMinutesRemaining"] = remaining
        if context.get("missingRequired"):
            facts.append(evidence("input", f"payload lacks required {', '.join(context['missingRequired'])}"))
    assert raw.exceptionId is not None, "the runner gives every exception an id before it runs"
    exception: ExceptionRecord = {
        "exceptionId": raw.exceptionId,
        "tenantId": tenant.tenantId,
        "domainName": domain.domainName,
        "sourceSystem": raw.sourceSystem,
        "exceptionType": check.exception_type,
        "reportedType": reported,
        "reportedTypeFrom": reported_from,
        "severity": None,
        "reportedSeverity": raw.severity,
        "timestamp": timestamp.isoformat(),
        "receivedAt": received.isoformat(),
        "rawPayload": raw.rawPayload,
        "normalizedContext": context,
        "detectedRules": [],
        "suggestedActions": [],
        "assignedGroup": None,
    }
    if claims:
        exception["sourceClaims"] = claims
    known = check.exception_type is not None
    decision = f"TYPE_{check.method.upper()}" if known else "TYPE_UNKNOWN"
    update = decision_update(
        ctx,
        "intake",
        decision,
        confidence or 0.0,
        facts,
        "triage" if known else "escalate",
        extra_audit=audit,
    )
    type_check: TypeCheckRecord = {
        "method": check.method,
        "reason": check.reason,
        "candidates": list(check.candidates),
    }
    escalation = None if known else {"reason": check.reason}
    return {
        **update,
        "tenantId": tenant.tenantId,
        "exception": exception,
        "typeCheck": type_check,
        "confidence": confidence or 0.0,
        "status": "IN_PROGRESS",
        "escalation": escalation,
    }
