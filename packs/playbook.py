"""Playbooks: ordered, typed steps that resolve one kind of exception.

Playbooks live in domain packs (shared by tenants) and in tenant packs (``customPlaybooks``). A
playbook is only ever applied automatically when the tenant's ``approvedBusinessProcesses`` lists
it; the ``approved`` flag here is the domain author's recommendation, used by the importer for
tenant packs that predate that list.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from packs.common import PackModel, SettableStatus, Severity
from packs.conditions import TriagedCondition
from packs.jsonvalues import JsonObject

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$", max_length=128)]
"""Ids of playbooks, rules, suites and cases: a letter, then letters, digits and ``_ . : -``."""

StepType = Literal["notify", "assign_owner", "set_status", "add_comment", "call_tool", "manual"]
SAFE_STEP_TYPES: frozenset[str] = frozenset({"notify", "assign_owner", "set_status", "add_comment"})
"""Step types that change nothing outside exops; ``call_tool`` depends on the tool, ``manual`` waits."""


class PlaybookMatch(PackModel):
    """When a playbook applies beyond its exception types; every given criterion must hold."""

    severity_in: list[Severity] | None = Field(default=None, description="Applies only to these severities.")
    sla_minutes_remaining_lt: float | None = Field(
        default=None, description="Applies only when fewer minutes than this remain before the SLA."
    )
    policy_tags: list[str] | None = Field(
        default=None, description="Applies only to tenants whose policyTags include all of these."
    )
    condition: TriagedCondition | None = Field(
        default=None, description="A CEL expression over the triaged exception."
    )


class StepBase(PackModel):
    name: str = Field(min_length=1, description="Short label shown to operators.")
    description: str = ""


class NotifyStep(StepBase):
    type: Literal["notify"]
    group: str | None = Field(default=None, description="Recipient group; the routed group when empty.")
    message: str = Field(min_length=1)


class AssignOwnerStep(StepBase):
    type: Literal["assign_owner"]
    group: str | None = Field(default=None, description="Queue or team; the routed group when empty.")
    owner: str | None = Field(default=None, description="A named person, when not a group.")


class SetStatusStep(StepBase):
    type: Literal["set_status"]
    status: SettableStatus


class AddCommentStep(StepBase):
    type: Literal["add_comment"]
    text: str = Field(min_length=1)


class CallToolStep(StepBase):
    type: Literal["call_tool"]
    tool: str = Field(min_length=1, description="A tool defined in the domain pack.")
    arguments: JsonObject = Field(
        default_factory=dict,
        description="Arguments; strings may hold placeholders such as {{ exception.rawPayload.orderId }}.",
    )


class SuggestedToolCall(PackModel):
    """A tool a manual step's text names, kept so the step can be offered as a tool call."""

    tool: str
    arguments: JsonObject = Field(default_factory=dict)


class ManualStep(StepBase):
    type: Literal["manual"]
    instructions: str = Field(min_length=1, description="What the person must do.")
    suggestedToolCall: SuggestedToolCall | None = None


PlaybookStep = Annotated[
    NotifyStep | AssignOwnerStep | SetStatusStep | AddCommentStep | CallToolStep | ManualStep,
    Field(discriminator="type"),
]


class Playbook(PackModel):
    id: Identifier
    name: str = Field(min_length=1)
    version: str = "1.0.0"
    description: str = ""
    appliesTo: list[str] = Field(min_length=1, description="Exception types this playbook resolves.")
    match: PlaybookMatch = Field(default_factory=PlaybookMatch)
    priority: int = Field(default=0, description="Higher wins when several playbooks match.")
    approved: bool = Field(
        default=True, description="The domain author's recommendation; tenants approve explicitly."
    )
    steps: list[PlaybookStep] = Field(min_length=1)
    successCriteria: list[str] = Field(default_factory=list)
    rollbackTool: str | None = Field(
        default=None, description="A tool to call when a step fails, to undo partial work."
    )
    rollbackArguments: JsonObject | None = Field(
        default=None,
        description="Arguments of the rollback call; placeholders may also name failedStep.order, "
        "failedStep.name and failedStep.arguments. Default: the failed step's own arguments.",
    )
