"""Calling the LLM from a node: retried by the node's RetryPolicy, degraded gracefully on the last try.

Transient failures (429, 5xx, timeouts) propagate while attempts remain, so LangGraph's RetryPolicy
runs the node again; on the final attempt, and for any other LLM failure, the node gets an
``LlmFailure`` and falls back to its deterministic behaviour. LLM output is advice: it never
decides alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from langgraph.runtime import Runtime

from graph.context import LLM_MAX_ATTEMPTS, RunContext
from graph.llm import LlmCall, LlmError, LlmTransientError

T = TypeVar("T")


@dataclass(frozen=True)
class LlmFailure:
    error: LlmError

    @property
    def call(self) -> LlmCall | None:
        return getattr(self.error, "call", None)

    def describe(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


async def ask(runtime: Runtime[RunContext], request: Callable[[], Awaitable[T]]) -> T | LlmFailure:
    try:
        return await request()
    except LlmTransientError as exc:
        attempt = runtime.execution_info.node_attempt if runtime.execution_info else LLM_MAX_ATTEMPTS
        if attempt < LLM_MAX_ATTEMPTS:
            raise
        return LlmFailure(exc)
    except LlmError as exc:
        return LlmFailure(exc)


def call_audit(call: LlmCall | None, attempt: int | None = None) -> dict[str, Any]:
    """Token usage, latency, model and prompt id/version of one LLM call, for the audit trail."""
    data = call.as_audit() if call is not None else {}
    if attempt is not None:
        data["nodeAttempt"] = attempt
    return data
