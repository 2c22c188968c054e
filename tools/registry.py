"""The tools one tenant may use: its domain's definitions with its own limits and allow-list.

Built from the packs in force for a run (the pack store has already removed tools a tenant admin
switched off from the allow-list). A tool outside the allow-list is still resolved, marked
``allowed=False``, so executors can refuse it with a clear reason instead of "unknown tool".
"""

from __future__ import annotations

from packs.domain import DomainPack
from packs.guardrails import effective_guardrails
from packs.tenant import TenantPolicyPack
from tools.executor import RegisteredTool


class ToolRegistry:
    def __init__(self, domain: DomainPack, tenant: TenantPolicyPack) -> None:
        rails = effective_guardrails(domain.guardrails, tenant.guardrailOverrides)
        allowed = set(tenant.toolsAllowList)
        redact = frozenset(name.lower() for name in tenant.auditPolicy.redactFields)
        self._tools: dict[str, RegisteredTool] = {}
        for name, definition in domain.tools.items():
            override = tenant.toolOverrides.get(name)
            timeout = override.timeoutSeconds if override and override.timeoutSeconds else None
            retries = override.retries if override and override.retries is not None else definition.retries
            self._tools[name] = RegisteredTool(
                tenant_id=tenant.tenantId,
                domain_name=domain.domainName,
                name=name,
                definition=definition,
                timeout_seconds=timeout or definition.timeoutSeconds,
                max_retries=min(retries, rails.max_auto_retries),
                allowed=name in allowed,
                redact_fields=redact,
            )

    def get(self, name: str) -> RegisteredTool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return list(self._tools)

    def allowed(self) -> list[RegisteredTool]:
        return [tool for tool in self._tools.values() if tool.allowed]
