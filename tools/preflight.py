"""The checks every tool call passes before an executor does anything else.

Dry runs and live runs share them so a dry run refuses exactly what a live run would refuse: a
playbook that passes in dry-run mode must not first fail when the tenant switches to live.
"""

from __future__ import annotations

from tools.executor import ToolCall
from tools.requests import argument_errors


def refusal(call: ToolCall) -> str | None:
    """Why ``call`` may not go ahead, or None when it may.

    A tool outside the tenant's allow-list is refused before its arguments are looked at; invalid
    arguments are reported all at once, as ``arguments.path: message`` lines joined by ``"; "``.
    """
    tool = call.tool
    if not tool.allowed:
        return f"tool {tool.name} is not in tenant {tool.tenant_id}'s toolsAllowList"
    errors = argument_errors(tool.definition, call.arguments)
    if errors:
        return "; ".join(errors)
    return None
