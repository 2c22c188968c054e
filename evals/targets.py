"""What an eval runs a case through: the whole graph, or one prompt version on one model.

Both return an ``Observation``: the decisions, the node path, the draft, and what the LLM cost.
Neither builds run contexts (evals sit below the app): the caller passes ``context_for(tenant)``,
which the CLI builds with ``app.runtime.Runtime.context_for(record_only=True)`` (dry-run tools,
recorded notifications, events in memory) and this eval's LLM client.

Graph runs are deterministic for a given set of answers: every case runs at a fixed clock (the
case's own timestamp, else ``FIXED_NOW``) with its id as the exception id, so the prompts the graph
sends, and so the cassette keys, are the same on every machine and every day.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, get_args

from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel, Field

from evals.dataset import EvalCase
from evals.providers import ProviderTransport
from graph.builder import build_graph
from graph.context import RunContext
from graph.llm import LlmClient, LlmError, LlmOutputError
from graph.runner import CaseRunner, NothingPending, thread_id
from packs.common import SETTABLE_STATUSES
from packs.domain import DomainPack
from packs.playbook import StepType
from packs.tenant import TenantPolicyPack
from prompts.outputs import UNKNOWN_TYPE, PlaybookDraft, TypeClassification, classification_model
from prompts.registry import PromptTemplate, render_template

ContextFor = Callable[[str, str], RunContext]
"""``(tenant id, domain name) -> context``; the domain names the author's view for pack-suite cases."""
FIXED_NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MAX_ANSWERS = 20
"""Answers given to one case at most (a plan of many manual steps); more means a loop, an error."""


class Observation(BaseModel):
    """What one run of one case produced."""

    decisions: dict[str, Any] = Field(default_factory=dict)
    path: list[str] = Field(default_factory=list)
    draft: dict[str, Any] | None = None
    draftSchemaValid: bool | None = None
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    """The stages with their decision and evidence (the report's trail)."""
    error: str | None = None
    replayMiss: str | None = None
    latencyMs: float = 0.0
    llmCalls: int = 0
    promptTokens: int = 0
    completionTokens: int = 0


def _decisions(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "exceptionType": result.get("exceptionType"),
        "severity": result.get("severity"),
        "actionability": result.get("actionability"),
        "playbookId": result.get("selectedPlaybookId"),
        "humanApprovalRequired": result.get("humanApprovalRequired"),
        "resolutionStatus": result.get("resolutionStatus"),
    }


def _fill_usage(obs: Observation, transport: ProviderTransport | None) -> Observation:
    if transport is not None:
        obs.llmCalls = transport.usage.calls
        obs.promptTokens = transport.usage.prompt_tokens
        obs.completionTokens = transport.usage.completion_tokens
        if transport.misses:
            obs.replayMiss = str(transport.misses[0])
    return obs


class GraphTarget:
    """The whole graph: in-memory checkpointer, no retry pauses, interrupts answered from the case."""

    name = "graph"

    def __init__(self, context_for: ContextFor, transport: ProviderTransport | None = None) -> None:
        self.context_for = context_for
        self.transport = transport
        self.saver = InMemorySaver()
        self.runner = CaseRunner(build_graph(checkpointer=self.saver, llm_retry_interval=0.0))

    async def run(self, case: EvalCase, domain: str) -> Observation:
        """Run one case; its checkpoints are dropped afterwards, so epochs and datasets never meet."""
        try:
            return await self._run(case, domain)
        finally:
            await self.saver.adelete_thread(thread_id(case.tenant, case.id))

    async def _run(self, case: EvalCase, domain: str) -> Observation:
        if self.transport is not None:
            self.transport.reset()
        base = self.context_for(case.tenant, domain)
        now = case.input.timestamp or FIXED_NOW
        ctx = dataclasses.replace(base, clock=lambda: now, run_id=f"eval:{case.id}")
        runner = self.runner
        raw = case.input.model_copy(update={"exceptionId": case.id})
        started = time.perf_counter()
        try:
            outcome = await runner.run(ctx, raw)
            for _ in range(MAX_ANSWERS):
                pending = outcome.result.get("pending")
                if not pending:
                    break
                answer = self._answer(case, pending.get("kind"))
                if answer is None:
                    break
                kind, body = answer
                outcome = await runner.answer(ctx, case.id, body, expect=kind)
        except (NothingPending, ValueError) as exc:
            obs = Observation(error=f"{type(exc).__name__}: {exc}")
            return _fill_usage(obs, self.transport)
        result = outcome.result
        obs = Observation(
            decisions=_decisions(result),
            path=[s["stage"] for s in result.get("stages", [])],
            draft=result.get("draft"),
            evidence=list(result.get("stages", [])),
            latencyMs=round((time.perf_counter() - started) * 1000, 1),
        )
        return _fill_usage(obs, self.transport)

    @staticmethod
    def _answer(case: EvalCase, kind: Any) -> tuple[Any, dict[str, Any]] | None:
        if kind == "approval" and case.answers.approval is not None:
            return "approval", case.answers.approval.model_dump(mode="json", exclude_none=True)
        if kind == "manual_step" and case.answers.manualSteps is not None:
            return "manual_step", case.answers.manualSteps.model_dump(mode="json", exclude_none=True)
        return None


def allowed_tools(domain: DomainPack, tenant: TenantPolicyPack) -> list[dict[str, Any]]:
    allowed = set(tenant.toolsAllowList)
    return [
        {"name": name, "description": t.description, "parameters": t.parameters, "changesData": t.mutating}
        for name, t in sorted(domain.tools.items())
        if name in allowed
    ]


def prompt_values(
    template: PromptTemplate, case: EvalCase, ctx: RunContext
) -> tuple[dict[str, Any], type[BaseModel]]:
    """The values a prompt is rendered with for a case, and the output model its answer must fit.

    Only prompts whose answer is a decision a case can label are scored alone; the others
    (summaries, supervisor opinions) are scored inside whole graph runs."""
    raw = case.input
    domain = ctx.domain
    values: dict[str, Any]
    if template.id == "type_classification":
        values = {
            "domain": domain,
            "reported_type": raw.reported_type()[0],
            "source_system": raw.sourceSystem,
            "payload": raw.rawPayload,
            "candidates": [],
        }
        return values, classification_model(list(domain.exceptionTypes))
    if template.id == "playbook_draft":
        exception_type = case.expected.exceptionType or raw.exceptionType or "UNKNOWN"
        tools = allowed_tools(domain, ctx.tenant)
        exception = raw.model_dump(mode="json", exclude_none=True, include={
            "exceptionType", "severity", "sourceSystem", "timestamp", "rawPayload", "normalizedContext"
        })  # fmt: skip
        values = {
            "domain_name": domain.domainName,
            "exception_type": exception_type,
            "type_definition": domain.exceptionTypes.get(exception_type),
            "exception": {"exceptionId": case.id, **exception},
            "evidence": [],
            "tools": tools,
            "step_types": [t for t in get_args(StepType) if tools or t != "call_tool"],
            "statuses": list(SETTABLE_STATUSES),
            "hint": None,
        }
        return values, PlaybookDraft
    raise ValueError(
        f"prompt {template.id!r} cannot be scored alone (its values come from earlier stages): "
        "score it with --target graph"
    )


class PromptTarget:
    """One prompt version, rendered with the case's inputs, sent to the model, parsed with its output."""

    def __init__(
        self,
        template: PromptTemplate,
        context_for: ContextFor,
        client: LlmClient,
        transport: ProviderTransport | None = None,
    ) -> None:
        self.template = template
        self.context_for = context_for
        self.client = client
        self.transport = transport
        self.name = f"prompt:{template.id}@{template.version}"

    async def run(self, case: EvalCase, domain: str) -> Observation:
        if self.transport is not None:
            self.transport.reset()
        ctx = self.context_for(case.tenant, domain)
        values, output = prompt_values(self.template, case, ctx)
        rendered = render_template(self.template, **values)
        started = time.perf_counter()
        obs = Observation()
        try:
            answer = await self.client.structured(rendered, output)
        except LlmOutputError as exc:
            obs.error = f"{exc.reason}: {exc}"
            if self.template.id == "playbook_draft":
                obs.draftSchemaValid = False
        except LlmError as exc:
            obs.error = str(exc)
        else:
            value = answer.value
            if isinstance(value, TypeClassification):
                # UNKNOWN is "no type", as the graph's intake reads it (the case escalates untyped)
                chosen = None if value.exceptionType == UNKNOWN_TYPE else value.exceptionType
                obs.decisions = {"exceptionType": chosen}
            elif isinstance(value, PlaybookDraft):
                obs.draft = value.model_dump(mode="json")
                obs.draftSchemaValid = True
        obs.latencyMs = round((time.perf_counter() - started) * 1000, 1)
        return _fill_usage(obs, self.transport)
