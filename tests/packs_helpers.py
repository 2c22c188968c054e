"""Building models straight from the fixture documents (no files) for decision tests."""

from __future__ import annotations

from typing import Any

from packs.domain import DomainPack
from packs.tenant import TenantPolicyPack


def build(
    domain_doc: dict[str, Any], tenant_doc: dict[str, Any] | None = None
) -> tuple[DomainPack, TenantPolicyPack]:
    domain = DomainPack.model_validate(domain_doc)
    tenant = TenantPolicyPack.model_validate(tenant_doc) if tenant_doc is not None else None
    if tenant is None:
        from packs.suite_runner import author_tenant

        tenant = author_tenant(domain)
    return domain, tenant
