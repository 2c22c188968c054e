"""Wiring real adapters into a graph run: the tenant's packs, its LLM client, the tool executor,
the notifier. One ``Runtime`` per process, so circuit breakers are shared by every run (and, in the
server, with every other process through the database: ``app/shared/breakers.py``)."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Literal, Protocol

from app.secrets import SecretScope
from app.settings import Settings
from graph.context import RunContext
from graph.events import EventSink, MemoryEventSink
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
from tools.secrets import SecretMissing

if TYPE_CHECKING:
    from app.memory.service import MemoryService

LLM_CLIENTS_KEPT = 32
"""LLM clients a runtime keeps (one per configuration in use)."""

ToolMode = Literal["dry-run", "live"]
Owner = Literal["platform", "tenant"]
"""Who stored (or gave) a domain pack: its tools' secrets resolve in that owner's namespaces."""


class ConfigurationError(ValueError):
    """Settings and packs disagree (a secret a pack names is not set, an unknown tenant...)."""


class SecretRefError(ConfigurationError):
    """A pack names a secret its owner's namespace does not hold; ``field`` is the pack path."""

    def __init__(self, field: str, missing: SecretMissing) -> None:
        super().__init__(f"{field}: {missing}")
        self.field = field
        self.missing = missing


def tenant_secret(settings: Settings, tenant_id: str, ref: str) -> str:
    """A secret a tenant's own pack names (``apiKeyRef`` of its LLM or embeddings endpoint): resolved
    in that tenant's namespace only, never the platform's. Raises ``SecretMissing``."""
    return settings.secrets.scope(tenant_id, platform=False)(ref)


def llm_config_for(settings: Settings, tenant: TenantPolicyPack) -> LlmConfig | None:
    """The tenant's LLM settings over the global ones; None when no LLM is configured (a normal mode).

    ``apiKeyRef`` resolves in the tenant's own namespace only. The operator's key
    (``EXOPS_LLM_API_KEY``) goes only to the operator's endpoint: a tenant that names its own
    ``baseUrl`` brings its own key or none."""
    own = tenant.llm
    if own is not None and not own.enabled:
        return None
    secrets = settings.secrets.scope(tenant.tenantId, platform=False)
    tenant_endpoint = bool(own and own.baseUrl)
    base_url = own.baseUrl if own and own.baseUrl else settings.llm_base_url
    model = own.model if own and own.model else settings.llm_model
    key: str | None
    if own is not None and own.apiKeyRef:
        try:
            key = secrets(own.apiKeyRef)
        except SecretMissing as exc:
            raise SecretRefError("$.llm.apiKeyRef", exc) from None
    elif tenant_endpoint:
        key = None
    else:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    if not model or not (base_url or key):
        return None
    temperature = own.temperature if own is not None else 0.0
    return LlmConfig(base_url=base_url, api_key=key or "unused", model=model,
                     timeout_seconds=settings.llm_timeout_seconds, temperature=temperature)  # fmt: skip


def smtp_config(settings: Settings) -> SmtpConfig | None:
    if not settings.smtp_host:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpConfig(
        host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
        password=password, security=settings.smtp_security,
        timeout_seconds=settings.smtp_timeout_seconds, default_from=settings.smtp_from,
    )  # fmt: skip


class PackLookup(Protocol):
    """Where runs find packs: the folder registry (CLI) or the database's active versions (server)."""

    def tenant(self, tenant_id: str) -> TenantPolicyPack | None: ...

    def domain(self, name: str, version: str | None = None) -> DomainPack | None: ...

    def domain_of(self, tenant: TenantPolicyPack) -> DomainPack: ...


class Runtime:
    """Builds run contexts for tenants from one pack lookup and one settings object.

    LLM clients are cached per configuration and circuit breakers shared by every run; tool
    executors and notifiers are built per context, because each holds the secret scope of the one
    tenant (and pack owner) it serves."""

    def __init__(
        self, settings: Settings, registry: PackLookup, *, events: EventSink | None = None,
        breakers: BreakerBoard | None = None,
    ) -> None:  # fmt: skip
        """``breakers``: a board shared with other processes (the server's); by default one of
        this process alone, with the settings' threshold and pause."""
        self.settings = settings
        self.registry = registry
        self.events = events
        """Where runs store their audit events (the server's tables); None: each context keeps its own
        in memory (``exops run``). Evaluations (``record_only``) always keep theirs in memory."""
        self._llm: OrderedDict[LlmConfig, LlmClient] = OrderedDict()
        self.breakers = breakers or BreakerBoard(
            failure_threshold=settings.tool_breaker_failures,
            reset_seconds=settings.tool_breaker_reset_seconds,
        )
        self.outbound = OutboundPolicy(parse_networks(settings.outbound_allowed_networks))
        self.smtp = smtp_config(settings)
        self.memory: MemoryService | None = None
        """Similar-case memory (``app/memory``), set where it is opened (the server, ``exops run``);
        each context gets the view of its own tenant only."""

    def tenant(self, tenant_id: str) -> TenantPolicyPack:
        tenant = self.registry.tenant(tenant_id)
        if tenant is None:
            raise ConfigurationError(f"tenant {tenant_id!r} has no policy pack")
        return tenant

    def executor(self, mode: ToolMode, secrets: SecretScope) -> ToolExecutor:
        if mode == "dry-run":
            return DryRunExecutor()
        settings = self.settings
        return HttpToolExecutor(
            secrets, breakers=self.breakers, outbound=self.outbound,
            backoff=Backoff(settings.tool_backoff_seconds, settings.tool_backoff_max_seconds),
        )  # fmt: skip

    def notifier(self, secrets: SecretScope, *, record_only: bool = False) -> Notifier:
        """Record-only unless the operator asked for delivery (``EXOPS_NOTIFICATIONS=send``)."""
        settings = self.settings
        if record_only or settings.notifications == "record":
            return RecordingNotifier(default_from=settings.smtp_from)
        return DeliveringNotifier(
            secrets, smtp=self.smtp, outbound=self.outbound, retries=settings.notification_retries,
            backoff_seconds=settings.tool_backoff_seconds, default_from=settings.smtp_from,
        )  # fmt: skip

    def llm(self, config: LlmConfig) -> LlmClient:
        """The client for ``config``, reused while it is among the ``LLM_CLIENTS_KEPT`` most recent:
        inline ``POST /run`` policies can name any number of configurations, and the cache must not
        grow with them (an evicted client is dropped, not closed, as a run may still hold it)."""
        client = self._llm.get(config)
        if client is None:
            client = self._llm[config] = LlmClient(config, outbound=self.outbound)
            while len(self._llm) > LLM_CLIENTS_KEPT:
                self._llm.popitem(last=False)
        else:
            self._llm.move_to_end(config)
        return client

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
        domain_owner: Owner = "platform",
    ) -> RunContext:
        """A context for packs given directly (a pack under test, the domain author's view);
        ``record_only`` runs (evaluations) record notifications instead of sending them.
        ``domain_owner`` is who stored or gave the domain pack: ``tenant`` for a pack a tenant user
        gave inline, whose tools may then use that tenant's secrets only."""
        if tenant.domainName != domain.domainName:
            raise ConfigurationError(
                f"tenant {tenant.tenantId} runs {tenant.domainName}, not {domain.domainName}"
            )
        tool_mode = tool_mode or self.settings.tool_mode
        book = self.settings.secrets
        tenant_secrets = book.scope(tenant.tenantId, platform=False)
        tool_secrets = book.scope(tenant.tenantId, platform=domain_owner == "platform")
        config = llm_config_for(self.settings, tenant)
        return RunContext(
            tenant=tenant,
            domain=domain,
            tool_mode=tool_mode,
            executor=self.executor(tool_mode, tool_secrets),
            notifier=self.notifier(tenant_secrets, record_only=record_only),
            llm=self.llm(config) if config is not None else None,
            approval_timeout_minutes=self.settings.approval_timeout_minutes,
            run_id=run_id,
            events=self.events if self.events is not None and not record_only else MemoryEventSink(),
            memory=self.memory.for_run(tenant, domain)
            if self.memory is not None and not record_only
            else None,
        )
