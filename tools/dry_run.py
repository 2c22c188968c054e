"""The default tool mode: run the shared checks and record exactly what would be sent, send nothing."""

from __future__ import annotations

from typing import Any, Literal

from tools.executor import ToolCall, ToolOutcome
from tools.preflight import refusal
from tools.requests import describe_request


class DryRunExecutor:
    """Refuses what a live run would refuse before sending, and returns the request it would make."""

    mode: Literal["dry-run", "live"] = "dry-run"

    async def call(self, call: ToolCall) -> ToolOutcome:
        request = describe_request(call.tool, call.arguments, call.idempotency_key)
        details: dict[str, Any] = {"tool": call.tool.key, "mode": self.mode}
        refused = refusal(call)
        if refused is not None:
            return ToolOutcome("FAILED", request, error=refused, attempts=0, details=details)
        if call.tool.definition.endpoint is None:
            details["note"] = "tool has no endpoint yet: it can only run as a dry run"
        return ToolOutcome("DRY_RUN", request, details=details)
