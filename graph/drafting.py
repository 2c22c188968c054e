"""Drafting a playbook with the LLM when no approved playbook covers an exception.

A draft is advice for a person to review: it is schema-constrained on the wire, then checked here
against the packs (typed steps; only tools the domain defines AND the tenant allow-lists; the
parameters those tools declare), and it is never approved. A model that gets something wrong is
told exactly what, once: one corrective retry fixes most slips, and more would only spend tokens.
Transient LLM failures propagate so the node's RetryPolicy handles them like any other LLM call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from graph.llm import LlmCall, LlmClient, LlmOutputError
from packs.common import SETTABLE_STATUSES
from packs.domain import DomainPack
from packs.playbook import CallToolStep, ManualStep, Playbook, StepType
from packs.tenant import TenantPolicyPack
from prompts.outputs import UNKNOWN_TYPE, DraftError, PlaybookDraft, draft_to_playbook
from prompts.registry import render_prompt

MAX_ATTEMPTS = 2
STEP_TYPES: tuple[str, ...] = get_args(StepType)
PROMPT_FIELDS = (
    "exceptionId",
    "exceptionType",
    "severity",
    "sourceSystem",
    "timestamp",
    "rawPayload",
    "normalizedContext",
)
"""What the model sees of the exception record: its facts, not the tenant's internal bookkeeping."""


@dataclass(frozen=True)
class DraftOutcome:
    playbook: Playbook | None
    reason: str
    calls: tuple[LlmCall, ...]
    """Every LLM call made, for the audit trail."""
    attempts: int


def _allowed_tools(domain: DomainPack, tenant: TenantPolicyPack) -> list[dict[str, Any]]:
    """The only tools a model is shown: defined by the domain and allow-listed by the tenant."""
    allowed = set(tenant.toolsAllowList)
    return [
        {"name": name, "description": t.description, "parameters": t.parameters, "changesData": t.mutating}
        for name, t in sorted(domain.tools.items())
        if name in allowed
    ]


def _tool_problems(playbook: Playbook, domain: DomainPack, tenant: TenantPolicyPack) -> list[str]:
    problems = []
    for number, step in enumerate(playbook.steps, start=1):
        if isinstance(step, CallToolStep):
            tool, arguments = step.tool, step.arguments
        elif isinstance(step, ManualStep) and step.suggestedToolCall is not None:
            tool, arguments = step.suggestedToolCall.tool, step.suggestedToolCall.arguments
        else:
            continue
        definition = domain.tools.get(tool)
        if definition is None:
            problems.append(
                f"step {number} uses tool {tool!r} that domain {domain.domainName} does not define"
            )
            continue
        if tool not in tenant.toolsAllowList:
            problems.append(f"step {number} uses tool {tool!r} that tenant {tenant.tenantId} may not use")
            continue
        declared = definition.parameters.get("properties")
        if isinstance(declared, dict) and declared:
            for name in arguments:
                if name not in declared:
                    known = ", ".join(sorted(declared))
                    problems.append(
                        f"step {number}: tool {tool!r} has no parameter {name!r} (it takes {known})"
                    )
        for name in definition.parameters.get("required", []):
            if name not in arguments:
                problems.append(f"step {number}: tool {tool!r} needs parameter {name!r}")
    return problems


def _playbook_id(exception_type: str, exception_id: str, content: str) -> str:
    digest = hashlib.sha256(f"{exception_id}\n{content}".encode()).hexdigest()[:8]
    safe_type = re.sub(r"[^A-Za-z0-9_.:-]", "_", exception_type)[:100]
    return f"DRAFT-{safe_type}-{digest}"


def _output_problem(exc: LlmOutputError) -> str:
    if exc.reason == "schema_violation":
        return "the reply does not fit the schema: " + "; ".join(exc.problems)
    return str(exc)


async def draft_playbook(
    llm: LlmClient,
    *,
    exception: Mapping[str, Any],
    domain: DomainPack,
    tenant: TenantPolicyPack,
    evidence: Sequence[str],
    hint: Playbook | None,
) -> DraftOutcome:
    """Ask for a playbook draft and check it; ``playbook`` is None (with the reason) when none is usable."""
    exception_type = str(exception.get("exceptionType") or UNKNOWN_TYPE)
    tools = _allowed_tools(domain, tenant)
    prompt = render_prompt(
        "playbook_draft",
        domain_name=domain.domainName,
        exception_type=exception_type,
        type_definition=domain.exceptionTypes.get(exception_type),
        exception={k: exception[k] for k in PROMPT_FIELDS if exception.get(k) is not None},
        evidence=list(evidence),
        tools=tools,
        step_types=[t for t in STEP_TYPES if tools or t != "call_tool"],
        statuses=list(SETTABLE_STATUSES),
        hint=hint.model_dump(
            mode="json", include={"name", "description", "steps", "successCriteria"}, exclude_defaults=True
        )
        if hint is not None
        else None,
    )
    calls: list[LlmCall] = []
    follow_up: list[dict[str, str]] = []
    reason = ""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            result = await llm.structured(prompt, PlaybookDraft, extra_messages=follow_up)
        except LlmOutputError as exc:
            calls.append(exc.call)
            previous, problems, reason = exc.content, list(exc.problems), _output_problem(exc)
        else:
            calls.append(result.call)
            previous = result.content
            try:
                playbook = draft_to_playbook(
                    result.value,
                    playbook_id=_playbook_id(exception_type, str(exception.get("exceptionId", "")), previous),
                    applies_to=[exception_type],
                )
                problems = _tool_problems(playbook, domain, tenant)
            except DraftError as exc:
                problems = list(exc.problems)
            if not problems:
                steps = len(playbook.steps)
                return DraftOutcome(
                    playbook, f"drafted {steps} step{'s' * (steps != 1)}", tuple(calls), attempt
                )
            reason = "; ".join(problems)
        correction = render_prompt("output_correction", problems=problems).messages
        follow_up = [*([{"role": "assistant", "content": previous}] if previous else []), *correction]
    return DraftOutcome(None, f"no draft: {reason}", tuple(calls), MAX_ATTEMPTS)
