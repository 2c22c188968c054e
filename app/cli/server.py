"""``exops serve``, ``exops worker``, ``exops start``, ``exops db upgrade``, ``exops tenants create``,
``exops keys create``."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer
from sqlalchemy import select

from app.admin.accounts import TENANT_ROLES, IssuedKey, ensure_tenant, issue_key
from app.auth.principal import Role
from app.cli.output import console, errors
from app.db.migrate import shown_url, upgrade
from app.db.models import ApiKey
from app.db.session import Database
from app.db.types import utc_now
from app.settings import Settings, get_settings
from packs.registry import PackRegistry

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the latest schema (EXOPS_DATABASE_URL), under the migration
    lock: run it from as many processes at once as you like, one migrates."""
    settings = get_settings()
    result = upgrade(settings.db_url)
    where = shown_url(settings.db_url)
    if result.migrated:
        console.print(
            f"database at {where} migrated from {result.before or '(empty)'} to {result.after}", markup=False
        )
    else:
        console.print(f"database at {where} is up to date ({result.after})", markup=False)


async def _create_tenant(settings: Settings, tenant_id: str, name: str) -> bool:
    db = Database(settings.db_url)
    try:
        async with db.session() as session:
            _, created = await ensure_tenant(session, tenant_id, name)
        return created
    finally:
        await db.close()


@tenants_app.command("create")
def tenants_create(
    tenant_id: Annotated[
        str, typer.Argument(help="The id exactly as in the tenant policy pack (e.g. TENANT_FINANCE_001).")
    ],
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
) -> None:
    """Create a tenant (its policy pack comes from the packs folder or the admin API)."""
    settings = get_settings()
    upgrade(settings.db_url)
    try:
        created = asyncio.run(_create_tenant(settings, tenant_id, name or tenant_id))
    except ValueError as exc:
        errors.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    console.print(f"tenant {tenant_id} {'created' if created else 'already exists'}")


async def _issue(settings: Settings, tenant_id: str | None, role: Role, name: str) -> IssuedKey:
    db = Database(settings.db_url)
    try:
        async with db.session() as session:
            return await issue_key(session, tenant_id=tenant_id, role=role, name=name, created_by="cli")
    finally:
        await db.close()


@keys_app.command("create")
def keys_create(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="The key's tenant (omit with --platform-admin).")
    ] = None,
    role: Annotated[str, typer.Option("--role", help="viewer | operator | admin")] = "operator",
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "",
    platform_admin: Annotated[
        bool, typer.Option("--platform-admin", help="A key for managing tenants.")
    ] = False,
) -> None:
    """Create an API key; the key is printed alone on the last line, once."""
    settings = get_settings()
    upgrade(settings.db_url)
    if platform_admin == (tenant is not None):
        errors.print("give either --tenant TENANT_ID or --platform-admin", style="red")
        raise typer.Exit(2)
    if not platform_admin and role not in TENANT_ROLES:
        errors.print(f"--role must be one of {', '.join(TENANT_ROLES)}", style="red")
        raise typer.Exit(2)
    chosen: Role = "platform_admin" if platform_admin else role  # type: ignore[assignment]
    try:
        issued = asyncio.run(_issue(settings, tenant, chosen, name))
    except (LookupError, ValueError) as exc:
        errors.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    errors.print(
        f"key {issued.key_id} ({issued.role}{' of ' + issued.tenant_id if issued.tenant_id else ''}) — shown once:"
    )
    print(issued.plaintext)


def serve(
    host: Annotated[str | None, typer.Option("--host")] = None,
    port: Annotated[int | None, typer.Option("--port")] = None,
    no_workers: Annotated[
        bool,
        typer.Option(
            "--no-workers",
            help="Serve the API only: cases and answers are queued for `exops worker` "
            "processes (on PostgreSQL, or on one SQLite file)",
        ),
    ] = False,
) -> None:
    """Run the API server (migrates the database first); it also runs jobs unless --no-workers."""
    import uvicorn

    from app.api.main import create_app

    settings = get_settings()
    uvicorn.run(
        create_app(settings, workers=not no_workers), host=host or settings.host, port=port or settings.port,
        log_level="info",
    )  # fmt: skip


async def run_worker(settings: Settings, concurrency: int, stop: asyncio.Event | None = None) -> None:
    """Run jobs until ``stop`` is set (SIGTERM or SIGINT when run from the command line), then stop
    gracefully: running jobs get ``worker_shutdown_seconds`` to finish, the rest go back to the queue."""
    from app.api.main import open_services

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with open_services(settings, workers=False) as services:
            await services.cases.start_workers(concurrency)
            logging.getLogger("exops.worker").info(
                "worker running %d job(s) at a time on %s (%s)", concurrency, settings.db_url.split("@")[-1],
                services.cases.jobs.backend,
            )  # fmt: skip
            await stop.wait()
            await services.cases.stop_workers()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", min=1, max=64, help="Jobs at once (EXOPS_WORKER_CONCURRENCY)."),
    ] = None,
) -> None:
    """Run case jobs (new cases, people's answers, the deadline sweep) without serving the API.

    Start as many as needed, on as many machines, against one PostgreSQL database. Stop with SIGTERM:
    running jobs finish (up to EXOPS_WORKER_SHUTDOWN_SECONDS) or go back to the queue."""
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    upgrade(settings.db_url)
    asyncio.run(run_worker(settings, concurrency or settings.worker_concurrency))


async def _demo_keys(settings: Settings, tenants: list[tuple[str, str]]) -> list[IssuedKey]:
    """Demo tenants from the packs folder, with fresh demo keys (earlier demo keys are revoked)."""
    db = Database(settings.db_url)
    issued: list[IssuedKey] = []
    try:
        async with db.session() as session:
            old = await session.execute(
                select(ApiKey).where(ApiKey.name.like("demo-%"), ApiKey.revoked_at.is_(None))
            )
            for key in old.scalars():
                key.revoked_at = utc_now()
            issued.append(
                await issue_key(session, tenant_id=None, role="platform_admin", name="demo-platform")
            )
            for tenant_id, name in tenants:
                await ensure_tenant(session, tenant_id, name)
                for role in ("viewer", "operator", "admin"):
                    issued.append(
                        await issue_key(session, tenant_id=tenant_id, role=role, name=f"demo-{role}")
                    )
    finally:
        await db.close()
    return issued


def start(
    host: Annotated[str | None, typer.Option("--host")] = None,
    port: Annotated[int | None, typer.Option("--port")] = None,
) -> None:
    """Start exops on embedded defaults: database, sample packs, demo tenants and keys, then the server."""
    settings = get_settings()
    upgrade(settings.db_url)
    registry = PackRegistry.from_directory(settings.packs_dir)
    for file, problems in registry.errors.items():
        for problem in problems:
            errors.print(f"pack problem: {problem}", markup=False, style="yellow")
        errors.print(f"{file}: kept out until fixed", style="yellow")
    tenants = [(p.key, getattr(p.pack, "tenantName", p.key)) for p in registry.tenants()]
    url = f"http://{host or settings.host}:{port or settings.port}"
    console.print(
        f"[bold]exops[/bold] on {url}  (operator UI: {url}/ui/, sign in with a key below; API docs: {url}/docs)"
    )
    console.print(f"database: {settings.db_url}   packs: {settings.packs_dir}")
    console.print(f"domains: {', '.join(p.key for p in registry.domains())}")
    if settings.demo:
        keys = asyncio.run(_demo_keys(settings, tenants))
        console.print("demo keys (send as the X-API-KEY header):")
        for key in keys:
            console.print(
                f"  {key.tenant_id or '(platform)':<16} {key.role:<15} {key.plaintext}", markup=False
            )
    serve(host=host, port=port)
