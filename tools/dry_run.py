"""The default tool mode: validate the call and record exactly what would be sent, send nothing."""

from __future__ import annotations

from typing import Literal

from tools.executor import ToolCall, ToolOutcome
from tools.requests import argument_errors, describe_request


class DryRunExecutor:
    """Checks arguments against the tool's schema and returns the request it would make."""

    mode: Literal["dry-run", "live"] = "dry-run"

    async def call(self, call: ToolCall) -> ToolOutcome:
        request = describe_request(call.tool, call.arguments, call.idempotency_key)
        errors = argument_errors(call.tool, call.arguments)
        if errors:
            return ToolOutcome("FAILED", request, error="; ".join(errors), attempts=0)
        if call.tool.endpoint is None:
            note = "tool has no endpoint yet: it can only run as a dry run"
            return ToolOutcome("DRY_RUN", request, details={"note": note})
        return ToolOutcome("DRY_RUN", request)
