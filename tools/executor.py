"""The interface the graph's execute node calls tools through, and what a call returns.

The graph never talks HTTP itself: it hands a ``ToolCall`` to a ``ToolExecutor``. The dry-run
executor records exactly what would be sent; the live executor (``tools.http``) sends it, with
retries, a circuit breaker and outbound checks. A ``ToolCall`` carries the tool as the tenant's
registry resolved it (``RegisteredTool``): the pack's definition plus the tenant's limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from packs.domain import ToolDefinition

ToolStatus = Literal["SUCCESS", "FAILED", "DRY_RUN"]
BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class RegisteredTool:
    """One tool of one tenant's domain, with that tenant's effective limits.

    ``key`` is ``tenant/domain/tool``: breakers and audit records are namespaced by it, so two
    tenants sharing a domain never share a breaker.
    """

    tenant_id: str
    domain_name: str
    name: str
    definition: ToolDefinition
    timeout_seconds: float
    max_retries: int
    allowed: bool
    redact_fields: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return f"{self.tenant_id}/{self.domain_name}/{self.name}"

    @property
    def state_changing(self) -> bool:
        return self.definition.mutating


@dataclass(frozen=True)
class ToolCall:
    tool: RegisteredTool
    arguments: dict[str, Any]
    idempotency_key: str
    exception_id: str

    @property
    def tool_name(self) -> str:
        return self.tool.name


@dataclass(frozen=True)
class ToolOutcome:
    """What one call came to, after every attempt. ``request``/``response`` are already redacted."""

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
