"""Building what an eval run needs from the app: contexts per tenant, and one LLM client per model.

Contexts come from ``Runtime.context_for(record_only=True)`` with dry-run tools: an eval never sends
a notification, calls a tool for real or writes an audit event to the database. The LLM is what the
eval names (``--model``), never the tenant's configured one, so a run is reproducible: with no model
the graph decides by rules alone, and with one every request goes through the run's provider.

The outbound policy: live and record requests pass the operator's policy like every other call
(``EXOPS_OUTBOUND_ALLOWED_NETWORKS`` must list ``127.0.0.0/8`` for ``exops llm serve``); replay sends
nothing anywhere, so its client gets a policy with no DNS lookups that lets the (never sent) request
reach the replay transport.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.runtime import ConfigurationError, PackLookup, Runtime
from app.settings import Settings
from evals.providers import CassetteStore, ProviderMode, ProviderTransport
from graph.context import RunContext
from graph.llm import LlmClient, LlmConfig
from packs.domain import DomainPack
from packs.suite_runner import AUTHOR_TENANT_ID, author_tenant
from packs.tenant import TenantPolicyPack
from tools.outbound import OutboundPolicy, parse_networks

REPLAY_NOWHERE = OutboundPolicy(parse_networks(["0.0.0.0/0", "::/0"]), resolver=lambda host, port: _none())
"""Replay only: requests never leave the process, so no address is looked up or refused."""


async def _none() -> list[str]:
    return ["192.0.2.1"]


@dataclass
class EvalModel:
    """One model of the run's matrix: its label, client and provider transport."""

    label: str
    client: LlmClient | None
    transport: ProviderTransport | None


def llm_model(
    settings: Settings,
    runtime: Runtime,
    model: str,
    *,
    base_url: str | None,
    mode: ProviderMode,
    cassettes: Path,
) -> EvalModel:
    """A client for ``model`` whose requests go through the provider (``evals.providers``)."""
    url = base_url or settings.llm_base_url or "http://127.0.0.1:8080/v1"
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused"
    config = LlmConfig(base_url=url, api_key=key, model=model, timeout_seconds=settings.llm_timeout_seconds)
    transport = ProviderTransport(mode=mode, store=CassetteStore(cassettes))
    outbound = REPLAY_NOWHERE if mode == "replay" else runtime.outbound
    return EvalModel(model, LlmClient(config, outbound=outbound, transport=transport), transport)


def tenant_and_domain(
    runtime: Runtime, registry: PackLookup, tenant_id: str, domain_name: str
) -> tuple[TenantPolicyPack, DomainPack]:
    """The packs a case runs under; the author's view (pack suites' cases without a tenant) is built
    from the domain."""
    if tenant_id == AUTHOR_TENANT_ID:
        domain = registry.domain(domain_name)
        if domain is None:
            raise ConfigurationError(f"no domain pack {domain_name!r}")
        return author_tenant(domain), domain
    tenant = runtime.tenant(tenant_id)
    return tenant, registry.domain_of(tenant)


def allowed_tools(runtime: Runtime, registry: PackLookup, tenant_id: str, domain_name: str) -> list[str]:
    """Tools a draft may name: defined by the domain and allow-listed by the tenant."""
    tenant, domain = tenant_and_domain(runtime, registry, tenant_id, domain_name)
    return [tool for tool in tenant.toolsAllowList if tool in domain.tools]


def contexts(
    runtime: Runtime,
    registry: PackLookup,
    llm: LlmClient | None,
    *,
    tenant_override: TenantPolicyPack | None = None,
    domain_override: DomainPack | None = None,
) -> Callable[[str, str], RunContext]:
    """``(tenant id, domain) -> context``: dry-run tools, recorded notifications, events in memory,
    this LLM. The overrides put a candidate pack in place of the active one (what-if)."""

    def context_for(tenant_id: str, domain_name: str) -> RunContext:
        tenant, domain = tenant_and_domain(runtime, registry, tenant_id, domain_name)
        tenant = tenant_override if tenant_override is not None else tenant
        domain = domain_override if domain_override is not None else domain
        ctx = runtime.context_for(tenant, domain, tool_mode="dry-run", record_only=True, run_id="eval")
        return dataclasses.replace(ctx, llm=llm)

    return context_for
