"""Carrying out one playbook step the policy lets run unattended.

Safe steps change the case itself (owner, status, comments) or ask for a notification; ``call_tool``
goes through the run's ``ToolExecutor`` (dry-run by default). A step that cannot be carried out
returns a failure with the reason; it never raises into the graph.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from graph.context import RunContext
from graph.status import can_transition
from packs.common import ResolutionStatus
from tools.executor import ToolCall, ToolOutcome
from tools.templating import TemplateRenderError, render_value


@dataclass
class StepResult:
    ok: bool
    detail: str
    event_type: str
    data: dict[str, Any] = field(default_factory=dict)
    exception: dict[str, Any] | None = None
    status: ResolutionStatus | None = None


def template_values(ctx: RunContext, exception: dict[str, Any]) -> dict[str, Any]:
    """What step placeholders can refer to: the exception, the domain and the tenant."""
    tenant = ctx.tenant
    return {
        "exception": exception,
        "domain": {"domainName": ctx.domain.domainName, "version": ctx.domain.version},
        "tenant": {
            "tenantId": tenant.tenantId,
            "tenantName": tenant.tenantName,
            "escalationQueue": tenant.escalationQueue,
            "defaultGroup": tenant.defaultGroup,
        },
    }


def idempotency_key(exception_id: str, order: int, tool: str, arguments: dict[str, Any]) -> str:
    body = json.dumps([exception_id, order, tool, arguments], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


async def call_tool(
    ctx: RunContext, exception: dict[str, Any], tool_name: str, arguments: dict[str, Any], order: int
) -> ToolOutcome:
    tool = ctx.domain.tools[tool_name]
    call = ToolCall(
        tenant_id=ctx.tenant.tenantId,
        domain_name=ctx.domain.domainName,
        tool_name=tool_name,
        tool=tool,
        arguments=arguments,
        idempotency_key=idempotency_key(exception["exceptionId"], order, tool_name, arguments),
        exception_id=exception["exceptionId"],
    )
    return await ctx.executor.call(call)


async def run_step(
    ctx: RunContext, item: dict[str, Any], exception: dict[str, Any], status: ResolutionStatus
) -> StepResult:
    step = item["step"]
    kind = step["type"]
    values = template_values(ctx, exception)
    where = f"step {item['order']}"
    try:
        if kind == "notify":
            group = step.get("group") or exception.get("assignedGroup") or ctx.tenant.defaultGroup
            message = render_value(step["message"], values, f"{where}.message")
            recipients = ctx.tenant.notificationPolicies.recipientsByGroup.get(group, [])
            data = {"group": group, "recipients": recipients, "message": message, "mode": ctx.tool_mode}
            return StepResult(
                True,
                f"notification for {group} ({len(recipients)} recipient(s))",
                "notification_requested",
                data,
            )
        if kind == "assign_owner":
            group = render_value(step.get("group"), values, f"{where}.group") or exception.get(
                "assignedGroup"
            )
            owner = render_value(step.get("owner"), values, f"{where}.owner")
            changed = {**exception, "assignedGroup": group, "owner": owner}
            return StepResult(
                True,
                f"assigned to {owner or group}",
                "owner_assigned",
                {"group": group, "owner": owner},
                changed,
            )
        if kind == "set_status":
            target: ResolutionStatus = step["status"]
            if not can_transition(status, target):
                return StepResult(
                    False,
                    f"status {status} cannot change to {target}",
                    "status_change_refused",
                    {"from": status, "to": target},
                )
            return StepResult(
                True,
                f"status {status} → {target}",
                "status_changed",
                {"from": status, "to": target},
                status=target,
            )
        if kind == "add_comment":
            text = render_value(step["text"], values, f"{where}.text")
            return StepResult(True, "comment added", "comment_added", {"text": text})
        if kind == "call_tool":
            arguments = render_value(step.get("arguments", {}), values, f"{where}.arguments")
            outcome = await call_tool(ctx, exception, step["tool"], arguments, item["order"])
            data = {"tool": step["tool"], "arguments": arguments, **outcome.as_audit()}
            detail = f"{step['tool']}: {outcome.status}" + (f" ({outcome.error})" if outcome.error else "")
            return StepResult(outcome.ok, detail, "tool_call", data)
    except TemplateRenderError as exc:
        return StepResult(
            False, f"cannot fill in the step's parameters: {exc}", "step_parameters_invalid", {}
        )
    return StepResult(False, f"step type {kind} cannot run unattended", "step_refused", {})
