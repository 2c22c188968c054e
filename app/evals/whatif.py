"""What-if before activation, wired: a candidate pack document, the tenant's stored cases, the report.

The candidate is validated exactly as an upload is (``packs.loader.validate_pack``: schema, importer,
cross-references, endpoints); a domain pack must be the tenant's domain, a policy must be the
tenant's own. The other pack is the one in force (the running store's active version, or the
folder's for the CLI). Nothing is stored or activated: the runs keep their events in memory, tools
run dry, notifications are recorded, and the graph's checkpoints live in memory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.db.session import Database
from app.evals.stored import decided_cases
from app.evals.wiring import contexts
from app.runtime import PackLookup, Runtime
from evals.targets import GraphTarget
from evals.whatif import WhatIfReport, what_if
from packs.addresses import Network
from packs.documents import detect_kind
from packs.domain import DomainPack
from packs.loader import validate_pack
from packs.problems import PackError, Problem
from packs.tenant import TenantPolicyPack

DEFAULT_LAST = 50
MAX_LAST = 500


def candidate_packs(
    data: dict[str, Any],
    source: str,
    tenant: TenantPolicyPack,
    registry: PackLookup,
    networks: tuple[Network, ...],
) -> tuple[TenantPolicyPack | None, DomainPack | None, str]:
    """The candidate as an override of the tenant's policy or of its domain; PackError naming fields."""
    kind = detect_kind(data)
    if kind is None:
        raise PackError(
            [
                Problem(
                    source,
                    "$",
                    "neither a domain pack (domainName, exceptionTypes) nor a tenant policy (tenantId)",
                )
            ]
        )
    loaded = validate_pack(data, kind, source, registry.domain, allowed_networks=networks)
    pack = loaded.pack
    if isinstance(pack, DomainPack):
        if pack.domainName != tenant.domainName:
            raise PackError(
                [
                    Problem(
                        source,
                        "$.domainName",
                        f"tenant {tenant.tenantId} runs {tenant.domainName}, not {pack.domainName}",
                    )
                ]
            )
        return None, pack, f"domain {pack.domainName}@{pack.version}"
    assert isinstance(pack, TenantPolicyPack)
    if pack.tenantId != tenant.tenantId:
        raise PackError([Problem(source, "$.tenantId", f"is {pack.tenantId}, not {tenant.tenantId}")])
    return pack, None, f"tenant {pack.tenantId}@{pack.version}"


async def run_what_if(
    db: Database,
    runtime: Runtime,
    registry: PackLookup,
    tenant_id: str,
    data: dict[str, Any],
    *,
    source: str = "candidate",
    last: int = DEFAULT_LAST,
    since: datetime | None = None,
) -> WhatIfReport:
    tenant = runtime.tenant(tenant_id)
    tenant_override, domain_override, label = candidate_packs(
        data, source, tenant, registry, runtime.outbound.allowed_networks
    )
    async with db.session() as session:
        cases = await decided_cases(session, tenant_id, since=since, last=min(last, MAX_LAST))
    context_for = contexts(
        runtime, registry, None, tenant_override=tenant_override, domain_override=domain_override
    )
    domain = (domain_override or registry.domain_of(tenant)).domainName
    return await what_if(tenant_id, label, domain, cases, GraphTarget(context_for))
