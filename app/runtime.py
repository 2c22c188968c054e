"""Wiring real adapters into a graph run: the tenant's packs, its LLM client, the tool executor."""

from __future__ import annotations

from typing import Literal, Protocol

from app.settings import Settings
from graph.context import RunContext
from graph.llm import LlmClient, LlmConfig
from packs.domain import DomainPack
from packs.tenant import TenantPolicyPack
from tools.dry_run import DryRunExecutor
from tools.executor import ToolExecutor
from tools.http import HttpToolExecutor

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

    def tenant(self, tenant_id: str) -> TenantPolicyPack:
        tenant = self.registry.tenant(tenant_id)
        if tenant is None:
            raise ConfigurationError(f"tenant {tenant_id!r} has no policy pack")
        return tenant

    def executor(self, mode: ToolMode) -> ToolExecutor:
        return DryRunExecutor() if mode == "dry-run" else HttpToolExecutor(self.settings.secret)

    def context(
        self, tenant_id: str, *, tool_mode: ToolMode = "dry-run", run_id: str = "adhoc"
    ) -> RunContext:
        tenant = self.tenant(tenant_id)
        return self.context_for(tenant, self.registry.domain_of(tenant), tool_mode=tool_mode, run_id=run_id)

    def context_for(
        self,
        tenant: TenantPolicyPack,
        domain: DomainPack,
        *,
        tool_mode: ToolMode = "dry-run",
        run_id: str = "adhoc",
    ) -> RunContext:
        """A context for packs given directly (a pack under test, the domain author's view)."""
        if tenant.domainName != domain.domainName:
            raise ConfigurationError(
                f"tenant {tenant.tenantId} runs {tenant.domainName}, not {domain.domainName}"
            )
        config = llm_config_for(self.settings, tenant)
        llm = None
        if config is not None:
            llm = self._llm.get(config) or self._llm.setdefault(config, LlmClient(config))
        return RunContext(
            tenant=tenant,
            domain=domain,
            tool_mode=tool_mode,
            executor=self.executor(tool_mode),
            llm=llm,
            approval_timeout_minutes=self.settings.approval_timeout_minutes,
            run_id=run_id,
        )
