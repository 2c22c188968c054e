"""The interface the graph's execute node calls tools through, and what a call returns.

The graph never talks HTTP itself: it hands a ``ToolCall`` to a ``ToolExecutor``. The dry-run
executor records exactly what would be sent; the live executor (tools issue) sends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from packs.domain import ToolDefinition

ToolStatus = Literal["SUCCESS", "FAILED", "DRY_RUN"]


@dataclass(frozen=True)
class ToolCall:
    tenant_id: str
    domain_name: str
    tool_name: str
    tool: ToolDefinition
    arguments: dict[str, Any]
    idempotency_key: str
    exception_id: str


@dataclass(frozen=True)
class ToolOutcome:
    status: ToolStatus
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 1
    latency_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "FAILED"

    def as_audit(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "request": self.request,
            "response": self.response,
            "error": self.error,
            "attempts": self.attempts,
            "latencyMs": round(self.latency_ms, 2),
            **self.details,
        }


class ToolExecutor(Protocol):
    mode: Literal["dry-run", "live"]

    async def call(self, call: ToolCall) -> ToolOutcome: ...
