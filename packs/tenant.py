"""The tenant policy pack: how one tenant runs one domain (approvals, limits, routing, notices)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from packs.common import PackModel, Severity, TenantId
from packs.conditions import TriagedCondition
from packs.guardrails import Guardrails
from packs.playbook import Identifier, Playbook


class RoutingRule(PackModel):
    id: Identifier
    condition: TriagedCondition
    assignGroup: str = Field(min_length=1)
    priority: int = Field(default=0, description="Higher is tried first; the first match wins.")


class EmailChannel(PackModel):
    kind: Literal["email"]
    fromAddress: str | None = None


class WebhookChannel(PackModel):
    kind: Literal["webhook"]
    urlRef: str = Field(min_length=1, description="Name of the webhook URL secret held in settings.")
    format: Literal["json", "slack", "teams"] = "json"


NotificationEvent = Literal["approval_required", "escalation", "resolved"]
NOTIFICATION_EVENTS: tuple[NotificationEvent, ...] = ("approval_required", "escalation", "resolved")


class NotificationPolicies(PackModel):
    channels: dict[str, Annotated[EmailChannel | WebhookChannel, Field(discriminator="kind")]] = Field(
        default_factory=dict
    )
    recipientsByGroup: dict[str, list[str]] = Field(
        default_factory=dict, description="Group → email addresses or channel names."
    )
    notifyOn: list[NotificationEvent] = Field(default_factory=lambda: list(NOTIFICATION_EVENTS))


class ToolOverride(PackModel):
    """A tenant's own limits for one of its domain's tools (its systems may be slower or flakier)."""

    timeoutSeconds: float | None = Field(default=None, gt=0, le=300)
    retries: int | None = Field(
        default=None, ge=0, le=10, description="Retries after a failure; capped by guardrails.maxAutoRetries."
    )


class AuditPolicy(PackModel):
    redactFields: list[str] = Field(
        default_factory=list,
        description="Field names (any depth, case-insensitive) whose values the audit trail shows as ***, "
        "on top of the built-in secret-like names.",
    )


class HumanApprovalRule(PackModel):
    severityIn: list[Severity] = Field(min_length=1)
    requireApproval: bool = True


class RetentionPolicies(PackModel):
    dataTTLDays: int | None = Field(default=None, ge=1)
    auditTTLDays: int | None = Field(default=None, ge=1)


class SlaPolicies(PackModel):
    defaultMinutes: int | None = Field(default=None, ge=1, description="SLA for types not listed.")
    byExceptionType: dict[str, int] = Field(default_factory=dict, description="Minutes per type.")
    agingThresholdMinutes: dict[str, int] = Field(
        default_factory=dict, description="Age (minutes) after which an open case per type is overdue."
    )


class LlmSettings(PackModel):
    enabled: bool = True
    baseUrl: str | None = Field(default=None, description="Any OpenAI-compatible endpoint.")
    model: str | None = None
    apiKeyRef: str | None = Field(default=None, description="Name of the API key secret in settings.")
    temperature: float = Field(default=0.0, ge=0, le=2)


class EmbeddingSettings(PackModel):
    provider: Literal["local", "openai"] = "local"
    model: str | None = None
    baseUrl: str | None = None
    apiKeyRef: str | None = None


class TenantPolicyPack(PackModel):
    tenantId: TenantId
    tenantName: str = Field(min_length=1)
    domainName: str = Field(min_length=1)
    domainVersion: str | None = Field(
        default=None, description="Pin a domain pack version; the newest loaded one otherwise."
    )
    version: str = "1.0.0"
    approvedBusinessProcesses: list[str] = Field(
        description="Playbook ids this tenant lets exops apply automatically."
    )
    severityOverrides: dict[str, Severity] = Field(default_factory=dict)
    toolsAllowList: list[str] = Field(default_factory=list)
    toolOverrides: dict[str, ToolOverride] = Field(
        default_factory=dict, description="Per tool: this tenant's timeout and retries."
    )
    auditPolicy: AuditPolicy = Field(default_factory=AuditPolicy)
    guardrailOverrides: Guardrails = Field(default_factory=Guardrails)
    routingRules: list[RoutingRule] = Field(default_factory=list)
    defaultGroup: str = Field(default="operations", description="Group when no routing rule matches.")
    escalationQueue: str = Field(default="escalations", min_length=1)
    notificationPolicies: NotificationPolicies = Field(default_factory=NotificationPolicies)
    humanApprovalRules: list[HumanApprovalRule] = Field(default_factory=list)
    retentionPolicies: RetentionPolicies = Field(default_factory=RetentionPolicies)
    customPlaybooks: list[Playbook] = Field(default_factory=list)
    sla: SlaPolicies = Field(default_factory=SlaPolicies)
    policyTags: list[str] = Field(default_factory=list, description="Tags playbook matches can require.")
    llm: LlmSettings | None = None
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
