"""``exops memory search|rebuild|stats``: similar-case memory from the command line.

They read the same database and store as the server (``EXOPS_DATABASE_URL``, ``EXOPS_DATA_DIR`` or
``EXOPS_CHROMA_URL``) and each tenant's active pack (from the database, else the packs folder).
chromadb and the embedding model load only when a command needs them, never at CLI start-up.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlalchemy import select

from app.cli.output import console, errors
from app.db.migrate import upgrade
from app.db.models import ExceptionCase
from app.db.session import Database
from app.settings import Settings, get_settings
from packs.domain import DomainPack
from packs.registry import PackRegistry
from packs.tenant import TenantPolicyPack

if TYPE_CHECKING:
    from app.memory.service import MemoryService

memory_app = typer.Typer(help="Similar-case memory.", no_args_is_help=True)


class _Packs:
    """Active packs from the database, else the folder's (a database that has not served yet)."""

    def __init__(self, store: Any, folder: PackRegistry) -> None:
        self.store, self.folder = store, folder

    def tenant(self, tenant_id: str) -> TenantPolicyPack | None:
        found: TenantPolicyPack | None = self.store.tenant(tenant_id) or self.folder.tenant(tenant_id)
        return found

    def domain(self, name: str, version: str | None = None) -> DomainPack | None:
        found: DomainPack | None = self.store.domain(name, version) or self.folder.domain(name, version)
        return found

    def domain_of(self, tenant: TenantPolicyPack) -> DomainPack:
        domain = self.domain(tenant.domainName, tenant.domainVersion)
        if domain is None:
            raise LookupError(
                f"domain pack {tenant.domainName!r} for tenant {tenant.tenantId!r} is not loaded"
            )
        return domain


@asynccontextmanager
async def _memory(settings: Settings) -> AsyncIterator[tuple[MemoryService, Database]]:
    from app.memory.service import MemoryService
    from app.packstore import PackStore
    from tools.outbound import OutboundPolicy, parse_networks

    db = Database(settings.db_url)
    try:
        store = PackStore()
        async with db.session() as session:
            await store.load(session)
        packs = _Packs(store, PackRegistry.from_directory(settings.packs_dir))
        outbound = OutboundPolicy(parse_networks(settings.outbound_allowed_networks))
        yield MemoryService(settings, db, packs, outbound=outbound), db
    finally:
        await db.close()


def _fail(message: str) -> None:
    errors.print(message, style="red", markup=False)
    raise typer.Exit(1)


def _settings() -> Settings:
    settings = get_settings()
    upgrade(settings.db_url)
    return settings


@memory_app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="What to look for: words, ids, a description.")],
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant whose cases to search.")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many cases.")] = 5,
    exception_type: Annotated[str | None, typer.Option("--type", help="Only this exception type.")] = None,
    severity: Annotated[str | None, typer.Option("--severity", help="Only this severity.")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="Only this final status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object with the hits.")] = False,
) -> None:
    """Hybrid search (meaning and words) of one tenant's remembered cases, each hit explained."""
    from app.memory.service import MemoryUnavailable
    from app.memory.store import ModelChanged
    from graph.memory import MemoryFilters

    filters: MemoryFilters = {}
    if exception_type:
        filters["exceptionType"] = exception_type
    if severity:
        filters["severity"] = severity.upper()
    if outcome:
        filters["outcome"] = outcome.upper()

    async def go() -> list[Any]:
        async with _memory(_settings()) as (service, _db):
            return await service.search(tenant, text, filters=filters, k=k)

    try:
        found = asyncio.run(go())
    except (MemoryUnavailable, ModelChanged) as exc:
        _fail(f"--tenant: {exc}")
        return
    if as_json:
        from app.memory.schemas import SimilarHit

        items = [SimilarHit.of(case).model_dump(mode="json") for case in found]
        console.print(json.dumps({"tenantId": tenant, "query": text, "items": items}), markup=False)
        return
    if not found:
        console.print(f"no remembered case of {tenant} matches", markup=False)
    for case in found:
        why = case.explanation or {}
        who = f", overridden by {case.decided_by}" if case.overridden else ""
        console.print(f"{case.exception_id}  {case.exception_type} {case.severity or ''} -> {case.outcome}"
                      f" (playbook {case.playbook_id or '-'}{who})", markup=False)  # fmt: skip
        console.print(f"    fused {case.score:.4f}  vector {why.get('vectorScore')} (rank {why.get('vectorRank')})"
                      f"  keyword {why.get('keywordScore')} (rank {why.get('keywordRank')})"
                      f"  matched {json.dumps(why.get('matchedFields') or {})}", markup=False)  # fmt: skip


async def _tenants_with_cases(db: Database) -> list[str]:
    async with db.session() as session:
        return sorted((await session.execute(select(ExceptionCase.tenant_id).distinct())).scalars())


@memory_app.command("rebuild")
def rebuild(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="One tenant; all with cases otherwise.")
    ] = None,
) -> None:
    """Re-index finished cases from the tables into a fresh collection with each tenant's current
    embedding model (needed after the pack's embeddings change; safe to run any time)."""
    from app.memory.service import MemoryUnavailable

    async def go() -> list[tuple[str, int]]:
        async with _memory(_settings()) as (service, db):
            tenants = [tenant] if tenant else await _tenants_with_cases(db)
            return [(name, await service.rebuild(name)) for name in tenants]

    try:
        done = asyncio.run(go())
    except MemoryUnavailable as exc:
        _fail(f"--tenant: {exc}")
        return
    for name, count in done:
        console.print(f"{name}: {count} case(s) remembered", markup=False)


@memory_app.command("stats")
def stats(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="One tenant; all with cases otherwise.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Per tenant: cases remembered, model and dimension, whether a rebuild is due, cases queued."""

    async def go() -> list[dict[str, Any]]:
        async with _memory(_settings()) as (service, db):
            tenants = [tenant] if tenant else await _tenants_with_cases(db)
            return await service.stats(tenants)

    rows = asyncio.run(go())
    if as_json:
        console.print(json.dumps({"tenants": rows}), markup=False)
        return
    for row in rows:
        flag = "  NEEDS REBUILD (exops memory rebuild)" if row["needsRebuild"] else ""
        console.print(f"{row['tenantId']}: {row['cases']} case(s), model {row['model']} ({row['dimension']}-d), "
                      f"{row['queued']} queued{flag}", markup=False)  # fmt: skip
        if row["lastError"]:
            console.print(f"    last error: {row['lastError']}", markup=False)
