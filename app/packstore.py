"""Packs as the server runs them: the active versions in the database, validated and held in memory.

The database is the record of every pack version (loaded from the packs folder or uploaded through
the API) and of which one is active. ``PackStore`` rebuilds its in-memory view from it after every
change; a tenant's tools switched off through the API are removed from its allow-list here.

Every process keeps such a view. A transaction that changes what it holds (an activation, a
rollback, a tool switch, a folder sync) starts with ``announce(session, "packs")``
(``app/shared/changes.py``): that raises the ``packs`` generation and serializes such changes across
processes. The process that made the change reloads at once; the others notice the new generation at
their next poll (``EXOPS_SHARED_POLL_SECONDS``, 0.5 s) and reload, so within a second every process
runs the same versions and switches. ``generation`` says which generation a view was built from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import PackActivation, PackVersion, TenantToolSetting
from app.db.types import utc_now
from app.shared.changes import announce, generation
from packs.domain import DomainPack
from packs.loader import LoadedPack, find_domain, load_document
from packs.problems import PackError, Problem
from packs.registry import PackRegistry
from packs.tenant import TenantPolicyPack


def content_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def pack_identity(loaded: LoadedPack) -> tuple[str, str, str]:
    pack = loaded.pack
    if isinstance(pack, DomainPack):
        return "domain", pack.domainName, pack.version
    return "tenant", pack.tenantId, pack.version


@dataclass
class PackStore:
    domains: list[LoadedPack] = field(default_factory=list)
    tenants: dict[str, TenantPolicyPack] = field(default_factory=dict)
    disabled_tools: dict[str, set[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    generation: int | None = None

    def domain(self, name: str, version: str | None = None) -> DomainPack | None:
        return find_domain(self.domains, name, version)

    def tenant(self, tenant_id: str) -> TenantPolicyPack | None:
        tenant = self.tenants.get(tenant_id)
        off = self.disabled_tools.get(tenant_id)
        if tenant is None or not off:
            return tenant
        return tenant.model_copy(
            update={"toolsAllowList": [t for t in tenant.toolsAllowList if t not in off]}
        )

    def domain_of(self, tenant: TenantPolicyPack) -> DomainPack:
        domain = self.domain(tenant.domainName, tenant.domainVersion)
        if domain is None:
            raise LookupError(
                f"domain pack {tenant.domainName!r} for tenant {tenant.tenantId!r} is not active"
            )
        return domain

    async def load(self, session: AsyncSession) -> None:
        """Rebuild from the active versions (domain packs first, tenant packs checked against them).
        The generation is read first: the rows are then at least that new (a newer change only means
        one more reload)."""
        seen = await generation(session, "packs")
        rows = (
            (await session.execute(select(PackVersion).where(PackVersion.active.is_(True)))).scalars().all()
        )
        domains: list[LoadedPack] = []
        tenants: dict[str, TenantPolicyPack] = {}
        problems: list[Problem] = []
        for row in sorted(rows, key=lambda r: r.kind != "domain"):
            source = f"{row.kind}:{row.name}@{row.version}"
            try:
                loaded = load_document(row.content, source, lambda n, v: find_domain(domains, n, v))
            except PackError as exc:
                problems.extend(exc.problems)
                continue
            if isinstance(loaded.pack, DomainPack):
                domains.append(loaded)
            else:
                tenants[loaded.pack.tenantId] = loaded.pack
        disabled = await _disabled_tools(session)
        self.domains, self.tenants, self.disabled_tools, self.problems = domains, tenants, disabled, problems
        self.generation = seen

    async def load_tool_switches(self, session: AsyncSession) -> None:
        """Re-read only the tenants' tool switches: a switch changes nothing else, and rebuilding
        every pack for it took ~0.3 s a click."""
        self.disabled_tools = await _disabled_tools(session)


async def _disabled_tools(session: AsyncSession) -> dict[str, set[str]]:
    disabled: dict[str, set[str]] = {}
    for setting in (await session.execute(select(TenantToolSetting))).scalars().all():
        if not setting.enabled:
            disabled.setdefault(setting.tenant_id, set()).add(setting.tool)
    return disabled


async def store_version(
    session: AsyncSession, loaded: LoadedPack, *, source: str, actor: str, activate: bool
) -> tuple[PackVersion, bool]:
    """Record a validated pack version; returns the row and whether it was new. Same version, same
    content: nothing new. Same version, other content: refused (a version is immutable)."""
    kind, name, version = pack_identity(loaded)
    digest = content_hash(loaded.document)
    existing = (
        await session.execute(
            select(PackVersion).where(
                PackVersion.kind == kind, PackVersion.name == name, PackVersion.version == version
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        if existing.content_hash != digest:
            raise PackError(
                [
                    Problem(
                        source,
                        "$.version",
                        f"{kind} pack {name} {version} already exists with other content: raise the version",
                    )
                ]
            )
        if activate and not existing.active:
            await activate_version(session, existing, actor)
        return existing, False
    row = PackVersion(kind=kind, name=name, version=version, content=loaded.document, content_hash=digest,
                      source=source, created_by=actor)  # fmt: skip
    session.add(row)
    await session.flush()
    if activate:
        await activate_version(session, row, actor)
    return row, True


async def activate_version(
    session: AsyncSession, row: PackVersion, actor: str, *, record: bool = True
) -> None:
    """Make ``row`` the active version of its pack; ``record`` adds the activation to the history
    (a rollback re-activates an earlier version without recording a new activation)."""
    await session.execute(
        update(PackVersion)
        .where(PackVersion.kind == row.kind, PackVersion.name == row.name)
        .values(active=False)
    )
    row.active = True
    row.activated_at = utc_now()
    if record:
        session.add(PackActivation(kind=row.kind, name=row.name, version=row.version, activated_by=actor))
    await session.flush()


async def sync_directory(
    session: AsyncSession, registry: PackRegistry, actor: str = "packs-folder"
) -> list[str]:
    """Record the folder's packs; a pack with nothing active yet, or whose active version came from
    the folder, follows the folder. Returns what changed. Announced first, so processes syncing the
    same folder at once take turns instead of inserting the same versions twice."""
    await announce(session, "packs")
    changes: list[str] = []
    for loaded in [*registry.domains(), *registry.tenants()]:
        kind, name, version = pack_identity(loaded)
        active = (
            await session.execute(
                select(PackVersion).where(
                    PackVersion.kind == kind, PackVersion.name == name, PackVersion.active.is_(True)
                )
            )
        ).scalar_one_or_none()
        follow = active is None or active.source.startswith("file:")
        try:
            row, new = await store_version(
                session, loaded, source=f"file:{loaded.source}", actor=actor, activate=follow
            )
        except PackError as exc:
            changes.extend(str(p) for p in exc.problems)
            continue
        if new:
            changes.append(f"{kind} {name} {version} recorded{' and activated' if row.active else ''}")
    return changes
