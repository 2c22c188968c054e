"""Triage: severity from the pack rules and the tenant's override, a diagnostic summary, similar cases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from langgraph.runtime import Runtime

from graph.context import RunContext
from graph.memory import ConfidenceRule, SimilarCase, memory_confidence
from graph.nodes.llm_support import LlmFailure, ask, call_audit
from graph.records import audit_event, decision_update, evidence
from graph.state import CaseState, Evidence, ExceptionRecord, SimilarCaseRecord, TriageRecord
from packs.decisions import case_data
from packs.severity import SeverityDecision, decide_severity
from packs.tenant import MemorySettings
from prompts.outputs import TriageSummary
from prompts.registry import render_prompt


def template_summary(exception: ExceptionRecord, severity: SeverityDecision, ctx: RunContext) -> str:
    """The summary without an LLM: what the pack says about the type, the severity and why, key facts."""
    exception_type = str(exception["exceptionType"])
    definition = ctx.domain.exceptionTypes[exception_type]
    facts = exception["normalizedContext"].get("attributes") or exception["rawPayload"]
    shown = ", ".join(f"{key}={value}" for key, value in list(facts.items())[:6])
    description = definition.description.rstrip(". ")
    text = f"{exception_type} from {exception['sourceSystem']}: {description}. Severity {severity.severity}: {severity.reason}."
    return f"{text} Key facts: {shown}." if shown else text


def condition_facts(exception: ExceptionRecord, ctx: RunContext) -> dict[str, Any]:
    return case_data(
        exception_type=exception["exceptionType"],
        tenant_id=ctx.tenant.tenantId,
        domain_name=ctx.domain.domainName,
        raw_payload=exception["rawPayload"],
        normalized_context=exception["normalizedContext"],
        source_system=exception["sourceSystem"],
        timestamp=exception["timestamp"],
        sla_minutes_remaining=exception["normalizedContext"].get("slaMinutesRemaining"),
        policy_tags=ctx.tenant.policyTags,
        severity=exception.get("severity"),
    )


async def _summary(
    runtime: Runtime[RunContext], exception: ExceptionRecord, severity: SeverityDecision
) -> tuple[str, Literal["template", "llm"], list[Evidence], list[Any]]:
    ctx = runtime.context
    fallback = template_summary(exception, severity, ctx)
    llm = ctx.llm
    if llm is None:
        return fallback, "template", [], []
    prompt = render_prompt(
        "triage_summary",
        exception=exception,
        type_definition=ctx.domain.exceptionTypes[str(exception["exceptionType"])],
        severity=severity.severity,
        severity_reason=severity.reason,
        matched_rules=[rule.id for rule in severity.matched_rules],
    )
    answer = await ask(runtime, lambda: llm.structured(prompt, TriageSummary))
    attempt = runtime.execution_info.node_attempt if runtime.execution_info else None
    event = audit_event(ctx, "triage", "llm_call", call_audit(getattr(answer, "call", None), attempt))
    if isinstance(answer, LlmFailure):
        return (
            fallback,
            "template",
            [evidence("llm", f"LLM summary unavailable ({answer.describe()})")],
            [event],
        )
    summary = answer.value.summary
    if answer.value.likelyCauses:
        summary += " Likely causes: " + "; ".join(answer.value.likelyCauses) + "."
    return summary, "llm", [], [event]


def confidence_rule(settings: MemorySettings) -> ConfidenceRule:
    return ConfidenceRule(
        min_similarity=settings.minSimilarity, override_penalty=settings.overridePenalty,
        raise_enabled=settings.raiseConfidence, raise_by=settings.raiseBy, cap=settings.confidenceCap,
        raise_min_cases=settings.raiseMinCases,
    )  # fmt: skip


def _similar_detail(case: SimilarCase) -> str:
    explanation = case.explanation
    similarity = (
        f", similarity {explanation['vectorScore']:.2f}"
        if explanation and explanation["vectorScore"] is not None
        else ""
    )
    words = (
        f", words {' '.join(explanation['matchedWords'][:6])}"
        if explanation and explanation["matchedWords"]
        else ""
    )
    how = f"; playbook {case.playbook_id}" if case.playbook_id else ""
    who = f"; overridden by {case.decided_by or 'a person'}" if case.overridden else (
        f"; decided by {case.decided_by}" if case.decided_by else "")  # fmt: skip
    return (
        f"{case.exception_id} (score {case.score:.3f}{similarity}{words}): {case.outcome or 'open'}{how}{who}"
    )


async def _memory(
    ctx: RunContext, exception: ExceptionRecord, severity: str, confidence: float, facts: list[Evidence]
) -> tuple[list[SimilarCaseRecord], list[str], float]:
    """Similar past cases and recurrences as evidence; the confidence as memory moves it."""
    settings = ctx.tenant.memory
    if ctx.memory is None:
        facts.append(evidence("similar_case", "similar-case memory is off on this server"))
        return [], [], confidence
    if not settings.enabled:
        facts.append(evidence("similar_case", "similar-case memory is off for this tenant (memory.enabled)"))
        return [], [], confidence
    since = ctx.clock() - timedelta(hours=settings.recurrenceWindowHours)
    recall = await ctx.memory.recall(
        {**exception, "severity": severity}, k=settings.topK, recurrence_since=since
    )
    if recall.unavailable:
        facts.append(evidence("similar_case", f"similar-case memory unavailable: {recall.unavailable}"))
        return [], [], confidence
    similar: list[SimilarCaseRecord] = []
    for case in recall.similar:
        explanation = case.explanation
        similar.append(
            {"exceptionId": case.exception_id, "exceptionType": case.exception_type, "score": case.score,
             "summary": case.summary, "outcome": case.outcome,
             "vectorScore": explanation["vectorScore"] if explanation else None,
             "keywordScore": explanation["keywordScore"] if explanation else None,
             "playbookId": case.playbook_id, "overridden": case.overridden, "decidedBy": case.decided_by}
        )  # fmt: skip
        facts.append(evidence("similar_case", _similar_detail(case)))
    if not similar:
        facts.append(evidence("similar_case", "no similar past case"))
    moved, why = memory_confidence(confidence, recall.similar, confidence_rule(settings))
    if why:
        facts.append(evidence("similar_case", f"confidence {why}"))
    recurrences = [case.exception_id for case in recall.recurrences]
    if recurrences:
        keys = ", ".join(f"{key}={value}" for key, value in recall.recurrence_keys.items())
        facts.append(evidence(
            "recurrence",
            f"recurrence: {keys} seen in {len(recurrences)} case(s) finished in the last "
            f"{settings.recurrenceWindowHours:g}h: {', '.join(recurrences[:10])}",
        ))  # fmt: skip
    return similar, recurrences, moved


async def triage(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    exception: ExceptionRecord = {**state["exception"]}
    severity = decide_severity(
        ctx.domain,
        ctx.tenant,
        condition_facts(exception, ctx),
        source_severity=exception.get("reportedSeverity"),
    )
    confidence = min(state.get("confidence", 1.0), severity.confidence)
    facts: list[Evidence] = [
        evidence("rule", f"severityRules.{r.id} matched ({r.severity})") for r in severity.matched_rules
    ]
    facts.append(evidence("rule" if severity.source == "rule" else "policy", severity.reason))
    summary, summary_source, summary_facts, audit = await _summary(runtime, exception, severity)
    facts.extend(summary_facts)
    similar, recurrences, confidence = await _memory(ctx, exception, severity.severity, confidence, facts)
    exception["severity"] = severity.severity
    exception["detectedRules"] = [rule.id for rule in severity.matched_rules]
    update = decision_update(
        ctx, "triage", f"SEVERITY_{severity.severity}", confidence, facts, "policy", extra_audit=audit
    )
    triage_record: TriageRecord = {
        "severity": severity.severity,
        "source": severity.source,
        "matchedRules": [rule.id for rule in severity.matched_rules],
        "override": severity.override,
        "reason": severity.reason,
        "summary": summary,
        "summarySource": summary_source,
        "similarCases": similar,
        "recurrences": recurrences,
    }
    return {**update, "exception": exception, "triage": triage_record, "confidence": confidence}
