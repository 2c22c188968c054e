"""Assembling the graph: nodes, conditional edges, retry policies on LLM nodes, error handling.

    intake ─▶ triage ─▶ policy ─▶ supervisor ─▶ resolution ─▶ supervisor ─▶ approval ─▶ execute ⇄ human_step
       │                              │  └──▶ feedback (non-actionable)        │            │
       └──────────▶ escalate ◀────────┴────────────────────────────────────────┴────────────┘ ─▶ feedback ─▶ END

Any node that raises (after its retries) is caught by ``on_node_error``, which records the error as
evidence and sends the case to escalation, so a failure never loses a case. The two nodes that wait
for people (approval, human_step) have no error handler: a refused answer must leave them waiting.

Every node runs inside ``recorded``: it times the node, counts the stage's visit, and hands the
node's audit events to the run's event sink (``graph.events``) before the update reaches the
checkpoint, keyed so that a node run again on resume records nothing twice.
"""

from __future__ import annotations

import time
from functools import wraps
from typing import Any, Protocol, cast

from langgraph.errors import NodeError
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, Command, RetryPolicy

from graph.context import LLM_MAX_ATTEMPTS, RunContext
from graph.edges import route_after_approval, route_after_execute, route_after_intake, route_after_supervisor
from graph.events import CaseKey, event_keys
from graph.llm import LlmTransientError
from graph.nodes.approval import approval
from graph.nodes.escalate import escalate
from graph.nodes.execute import execute
from graph.nodes.feedback import feedback
from graph.nodes.human_step import human_step
from graph.nodes.intake import intake
from graph.nodes.policy import policy
from graph.nodes.resolution import resolution
from graph.nodes.supervisor import supervisor
from graph.nodes.triage import triage
from graph.records import decision_update, evidence
from graph.state import AuditEvent, CaseOutput, CaseState, ExceptionInput, Stage


class Node(Protocol):
    async def __call__(self, state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]: ...


def case_key(state: CaseState) -> CaseKey:
    return CaseKey(state["tenantId"], str(state["raw"]["exceptionId"]))


async def record_events(
    ctx: RunContext, state: CaseState, stage: Stage, events: list[AuditEvent], *, failed: bool = False
) -> dict[str, dict[str, int]]:
    """Hand a node's events to the sink under this visit's keys; the state update counting the visit."""
    visit = state.get("visits", {}).get(stage, 0) + 1
    if events:
        await ctx.events.write(case_key(state), event_keys(stage, visit, events, failed=failed))
    return {"visits": {stage: 1}}


def recorded(stage: Stage, node: Node) -> Node:
    """Run the node, store its audit events (see the module docstring), and add its wall time to
    ``timings`` (milliseconds, summed over visits)."""

    @wraps(node)
    async def run(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
        started = time.perf_counter()
        update = dict(await node(state, runtime=runtime))
        visit = await record_events(runtime.context, state, stage, update.pop("audit", []))
        return {**update, **visit, "timings": {stage: (time.perf_counter() - started) * 1000}}

    return run


async def on_node_error(state: CaseState, error: NodeError, runtime: Runtime[RunContext]) -> Command[str]:
    """A node failed for good: keep the error as evidence and escalate the case. The failure's events
    have keys of their own (``graph.events.event_keys``), apart from any the node stored itself."""
    ctx = runtime.context
    stage = error.node
    message = f"{type(error.error).__name__}: {error.error}"
    failed: Stage = next((s for s in STAGES if s == stage), "escalate")
    facts = [evidence("error", f"stage {stage} failed: {message}")]
    recorded = decision_update(ctx, failed, "FAILED", 0.0, facts, "escalate")
    visit = await record_events(ctx, state, failed, recorded.pop("audit"), failed=True)
    return Command(
        update={**recorded, **visit, "error": {"stage": stage, "message": message}}, goto="escalate"
    )


STAGES: tuple[Stage, ...] = (
    "intake", "triage", "policy", "supervisor", "resolution", "approval", "execute", "human_step", "feedback",
    "escalate",
)  # fmt: skip


def build_graph(
    *, checkpointer: Checkpointer = None, llm_retry_interval: float = 0.5
) -> CompiledStateGraph[CaseState, RunContext, ExceptionInput, CaseOutput]:
    """The exception-handling graph; ``checkpointer`` None means no persistence (no approvals)."""
    llm_retry = RetryPolicy(
        max_attempts=LLM_MAX_ATTEMPTS,
        initial_interval=llm_retry_interval,
        max_interval=10.0,
        retry_on=LlmTransientError,
    )
    builder = StateGraph(
        CaseState, context_schema=RunContext, input_schema=ExceptionInput, output_schema=CaseOutput
    )
    guarded: dict[Stage, tuple[Node, RetryPolicy | None]] = {
        "intake": (intake, llm_retry),
        "triage": (triage, llm_retry),
        "policy": (policy, None),
        "supervisor": (supervisor, llm_retry),
        "resolution": (resolution, llm_retry),
        "execute": (execute, None),
        "escalate": (escalate, None),
        "feedback": (feedback, None),
    }
    for stage, (node, retry) in guarded.items():
        builder.add_node(
            stage, recorded(stage, node), retry_policy=retry, error_handler=cast(Any, on_node_error)
        )
    builder.add_node("approval", recorded("approval", approval))
    builder.add_node("human_step", recorded("human_step", human_step))
    builder.add_edge(START, "intake")
    builder.add_conditional_edges("intake", route_after_intake)
    builder.add_edge("triage", "policy")
    builder.add_edge("policy", "supervisor")
    builder.add_conditional_edges("supervisor", route_after_supervisor)
    builder.add_edge("resolution", "supervisor")
    builder.add_conditional_edges("approval", route_after_approval)
    builder.add_conditional_edges("execute", route_after_execute)
    builder.add_edge("human_step", "execute")
    builder.add_edge("escalate", "feedback")
    builder.add_edge("feedback", END)
    return builder.compile(checkpointer=checkpointer, name="exops")
