"""Wiring real adapters into a graph run: the tenant's packs, its LLM client, the tool executor,
the notifier. One ``Runtime`` per process, so circuit breakers are shared by every run."""

from __future__ import annotations

from typing import Literal, Protocol

from app.settings import Settings
from graph.context import RunContext
from graph.llm import LlmClient, LlmConfig
from packs.domain import DomainPack
from packs.tenant import TenantPolicyPack
from tools.breaker import BreakerBoard
from tools.dry_run import DryRunExecutor
from tools.executor import ToolExecutor
from tools.http import Backoff, HttpToolExecutor
from tools.notifications.email import SmtpConfig
from tools.notifications.model import Notifier
from tools.notifications.notifier import DeliveringNotifier, RecordingNotifier
from tools.outbound import OutboundPolicy, parse_networks

ToolMode = Literal["dry-run", "live"]


class ConfigurationError(ValueError):
    """Settings and packs disagree (a secret a pack names is not set, an unknown tenant...)."""


def llm_config_for(settings: Settings, tenant: TenantPolicyPack) -> LlmConfig | None:
    """The tenant's LLM settings over the global ones; None when no LLM is configured (a normal mode)."""
    own = tenant.llm
    if own is not None and not own.enabled:
        return None
    base_url = own.baseUrl if own and own.baseUrl else settings.llm_base_url
    model = own.model if own and own.model else settings.llm_model
    if own is not None and own.apiKeyRef:
        key = settings.secret(own.apiKeyRef)
        if key is None:
            raise ConfigurationError(
                f"tenant {tenant.tenantId}: llm.apiKeyRef {own.apiKeyRef!r} is not in EXOPS_SECRETS"
            )
    else:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    if not model or not (base_url or key):
        return None
    temperature = own.temperature if own is not None else 0.0
    return LlmConfig(base_url=base_url, api_key=key or "unused", model=model,
                     timeout_seconds=settings.llm_timeout_seconds, temperature=temperature)  # fmt: skip


def notifier_for(settings: Settings, outbound: OutboundPolicy) -> Notifier:
    """Record-only unless the operator asked for delivery (``EXOPS_NOTIFICATIONS=send``)."""
    if settings.notifications == "record":
        return RecordingNotifier(default_from=settings.smtp_from)
    smtp = None
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        smtp = SmtpConfig(
            host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
            password=password, security=settings.smtp_security,
            timeout_seconds=settings.smtp_timeout_seconds, default_from=settings.smtp_from,
        )  # fmt: skip
    return DeliveringNotifier(
        settings.secret, smtp=smtp, outbound=outbound, retries=settings.notification_retries,
        backoff_seconds=settings.tool_backoff_seconds, default_from=settings.smtp_from,
    )  # fmt: skip


class PackLookup(Protocol):
    """Where runs find packs: the folder registry (CLI) or the database's active versions (server)."""

    def tenant(self, tenant_id: str) -> TenantPolicyPack | None: ...

    def domain(self, name: str, version: str | None = None) -> DomainPack | None: ...

    def domain_of(self, tenant: TenantPolicyPack) -> DomainPack: ...


class Runtime:
    """Builds run contexts for tenants from one pack lookup and one settings object (clients cached)."""

    def __init__(self, settings: Settings, registry: PackLookup) -> None:
        self.settings = settings
        self.registry = registry
        self._llm: dict[LlmConfig, LlmClient] = {}
        self.breakers = BreakerBoard(
            failure_threshold=settings.tool_breaker_failures,
            reset_seconds=settings.tool_breaker_reset_seconds,
        )
        self.outbound = OutboundPolicy(parse_networks(settings.outbound_allowed_networks))
        self.live_executor = HttpToolExecutor(
            settings.secret, breakers=self.breakers, outbound=self.outbound,
            backoff=Backoff(settings.tool_backoff_seconds, settings.tool_backoff_max_seconds),
        )  # fmt: skip
        self.notifier = notifier_for(settings, self.outbound)

    def tenant(self, tenant_id: str) -> TenantPolicyPack:
        tenant = self.registry.tenant(tenant_id)
        if tenant is None:
            raise ConfigurationError(f"tenant {tenant_id!r} has no policy pack")
        return tenant

    def executor(self, mode: ToolMode) -> ToolExecutor:
        return DryRunExecutor() if mode == "dry-run" else self.live_executor

    def context(
        self, tenant_id: str, *, tool_mode: ToolMode | None = None, run_id: str = "adhoc"
    ) -> RunContext:
        tenant = self.tenant(tenant_id)
        return self.context_for(tenant, self.registry.domain_of(tenant), tool_mode=tool_mode, run_id=run_id)

    def context_for(
        self,
        tenant: TenantPolicyPack,
        domain: DomainPack,
        *,
        tool_mode: ToolMode | None = None,
        run_id: str = "adhoc",
        record_only: bool = False,
    ) -> RunContext:
        """A context for packs given directly (a pack under test, the domain author's view);
        ``record_only`` runs (evaluations) record notifications instead of sending them."""
        if tenant.domainName != domain.domainName:
            raise ConfigurationError(
                f"tenant {tenant.tenantId} runs {tenant.domainName}, not {domain.domainName}"
            )
        tool_mode = tool_mode or self.settings.tool_mode
        config = llm_config_for(self.settings, tenant)
        llm = None
        if config is not None:
            llm = self._llm.get(config) or self._llm.setdefault(config, LlmClient(config))
        return RunContext(
            tenant=tenant,
            domain=domain,
            tool_mode=tool_mode,
            executor=self.executor(tool_mode),
            notifier=RecordingNotifier(default_from=self.settings.smtp_from)
            if record_only
            else self.notifier,
            llm=llm,
            approval_timeout_minutes=self.settings.approval_timeout_minutes,
            run_id=run_id,
        )
