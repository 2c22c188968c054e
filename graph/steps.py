"""Carrying out one playbook step the policy lets run unattended.

Safe steps change the case itself (owner, status, comments) or notify a group; ``call_tool`` goes
through the run's ``ToolExecutor`` (dry-run by default) with the tool as the tenant's registry
resolves it. Parameters are rendered first, in a sandbox, from the exception, the domain and the
tenant; a step that cannot be carried out returns a failure with the reason and never raises into
the graph.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from graph.context import RunContext
from graph.notices import deliver, notice_for
from graph.state import ExceptionRecord, PackDocument, PlanItem
from graph.status import can_transition
from packs.common import ResolutionStatus
from tools.executor import ToolCall, ToolOutcome
from tools.notifications.notifier import NOBODY
from tools.redaction import redact
from tools.templating import TemplateRenderError, render_value

StepEvent = tuple[str, dict[str, Any]]
"""An audit event a step produced: its type and data (the execute node adds order and actor)."""


@dataclass
class StepResult:
    outcome: Literal["SUCCESS", "FAILED", "SKIPPED"]
    detail: str
    events: list[StepEvent] = field(default_factory=list)
    exception: ExceptionRecord | None = None
    status: ResolutionStatus | None = None
    arguments: dict[str, Any] | None = None
    """call_tool steps: the rendered arguments (a rollback may reuse them)."""

    @property
    def ok(self) -> bool:
        return self.outcome != "FAILED"


def template_values(ctx: RunContext, exception: Mapping[str, Any], **more: Any) -> dict[str, Any]:
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
        **more,
    }


def idempotency_key(exception_id: str, order: int, tool: str, arguments: dict[str, Any]) -> str:
    """Stable for one step of one case: a retried or resumed call carries the same key."""
    body = json.dumps([exception_id, order, tool, arguments], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


async def call_tool(
    ctx: RunContext, exception: ExceptionRecord, tool_name: str, arguments: dict[str, Any], order: int
) -> ToolOutcome | str:
    """The tool's outcome, or why it could not even be attempted (the domain does not define it)."""
    tool = ctx.tools.get(tool_name)
    if tool is None:
        return f"tool {tool_name} is not defined by domain {ctx.domain.domainName}"
    call = ToolCall(
        tool=tool,
        arguments=arguments,
        idempotency_key=idempotency_key(exception["exceptionId"], order, tool_name, arguments),
        exception_id=exception["exceptionId"],
    )
    return await ctx.executor.call(call)


def tool_event(
    ctx: RunContext, tool: str, arguments: dict[str, Any], outcome: ToolOutcome | str
) -> dict[str, Any]:
    """The audit data of one call: the tool by name (and registry key), the arguments as redacted in
    the request, and everything the executor recorded (attempts, breaker, reply)."""
    if isinstance(outcome, str):
        shown = redact(arguments, ctx.tenant.auditPolicy.redactFields)
        return {"tool": tool, "mode": ctx.tool_mode, "arguments": shown, "status": "FAILED", "error": outcome,
                "attempts": 0}  # fmt: skip
    audit = outcome.as_audit()
    request = outcome.request
    shown = request.get("json", request.get("params", {}))
    return {**audit, "tool": tool, "toolKey": audit.get("tool"), "arguments": shown}


def _describe(tool: str, outcome: ToolOutcome | str) -> tuple[bool, str]:
    if isinstance(outcome, str):
        return False, outcome
    return outcome.ok, f"{tool}: {outcome.status}" + (f" ({outcome.error})" if outcome.error else "")


async def _notify(ctx: RunContext, step: PackDocument, exception: ExceptionRecord, where: str) -> StepResult:
    values = template_values(ctx, exception)
    group = step.get("group") or exception.get("assignedGroup") or ctx.tenant.defaultGroup
    message = render_value(step["message"], values, f"{where}.message")
    notice = notice_for(ctx, "step", exception, group=group, text=str(message))
    results = await deliver(ctx, notice)
    events: list[StepEvent] = [
        (f"notification_{r.status.lower()}",
         {"event": "step", "group": group, "subject": notice.subject, "message": message, **r.as_audit()})
        for r in results
    ]  # fmt: skip
    delivered = [r for r in results if r.status != "FAILED"]
    if results and all(r.delivery == NOBODY for r in results):
        # The tenant routes this group nowhere: nothing to do, said plainly, and the plan goes on.
        return StepResult("SKIPPED", f"nobody to notify: {results[0].error}", events)
    if results and not delivered:
        errors = "; ".join(f"{r.delivery.channel}: {r.error}" for r in results)
        return StepResult("FAILED", f"nobody in {group} could be notified ({errors})", events)
    return StepResult("SUCCESS", f"{group} notified through {len(delivered)} channel(s)", events)


async def run_step(
    ctx: RunContext, item: PlanItem, exception: ExceptionRecord, status: ResolutionStatus
) -> StepResult:
    step = item["step"]
    kind = step["type"]
    values = template_values(ctx, exception)
    where = f"step {item['order']}"
    try:
        if kind == "notify":
            return await _notify(ctx, step, exception, where)
        if kind == "assign_owner":
            group = render_value(step.get("group"), values, f"{where}.group") or exception.get(
                "assignedGroup"
            )
            owner = render_value(step.get("owner"), values, f"{where}.owner")
            changed: ExceptionRecord = {**exception, "assignedGroup": group, "owner": owner}
            data = {"group": group, "owner": owner}
            return StepResult("SUCCESS", f"assigned to {owner or group}", [("owner_assigned", data)], changed)
        if kind == "set_status":
            target: ResolutionStatus = step["status"]
            change = {"from": status, "to": target}
            if target == status:
                return StepResult("SKIPPED", f"status is already {target}", [("status_unchanged", change)])
            if not can_transition(status, target):
                reason = f"status {status} cannot change to {target}"
                return StepResult("FAILED", reason, [("status_change_refused", change)])
            return StepResult(
                "SUCCESS", f"status {status} → {target}", [("status_changed", change)], status=target
            )
        if kind == "add_comment":
            text = render_value(step["text"], values, f"{where}.text")
            return StepResult("SUCCESS", "comment added", [("comment_added", {"text": text})])
        if kind == "call_tool":
            arguments = render_value(step.get("arguments", {}), values, f"{where}.arguments")
            outcome = await call_tool(ctx, exception, step["tool"], arguments, item["order"])
            ok, detail = _describe(step["tool"], outcome)
            data = tool_event(ctx, step["tool"], arguments, outcome)
            return StepResult(
                "SUCCESS" if ok else "FAILED", detail, [("tool_call", data)], arguments=arguments
            )
    except TemplateRenderError as exc:
        reason = f"cannot fill in the step's parameters: {exc}"
        return StepResult("FAILED", reason, [("step_parameters_invalid", {"reason": str(exc)})])
    return StepResult("FAILED", f"step type {kind} cannot run unattended", [("step_refused", {"type": kind})])


async def rollback(
    ctx: RunContext, playbook: PackDocument, exception: ExceptionRecord, failed: PlanItem,
    arguments: dict[str, Any] | None,
) -> tuple[str, dict[str, Any] | None]:  # fmt: skip
    """Run the playbook's rollback tool after ``failed``; a sentence for the escalation and its event.

    The rollback's arguments are the playbook's ``rollbackArguments`` rendered with ``failedStep``
    available, else the failed step's own rendered arguments, else just the exception id."""
    tool = playbook.get("rollbackTool")
    if not tool:
        return "the playbook has no rollback tool", None
    failed_step = {"order": failed["order"], "name": failed["name"], "arguments": arguments or {}}
    template = playbook.get("rollbackArguments")
    try:
        if template is not None:
            values = template_values(ctx, exception, failedStep=failed_step)
            args = render_value(template, values, "rollbackArguments")
        else:
            args = arguments if arguments is not None else {"exceptionId": exception["exceptionId"]}
    except TemplateRenderError as exc:
        data = {
            "tool": tool,
            "rollbackOf": failed["order"],
            "status": "FAILED",
            "error": str(exc),
            "attempts": 0,
        }
        return f"rollback {tool} could not start: {exc}", data
    outcome = await call_tool(ctx, exception, tool, args, 1000 + failed["order"])
    ok, detail = _describe(tool, outcome)
    data = {**tool_event(ctx, tool, args, outcome), "rollbackOf": failed["order"]}
    return (f"rolled back with {detail}" if ok else f"rollback failed: {detail}"), data
