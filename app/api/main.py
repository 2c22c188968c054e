"""The FastAPI application: wiring at start-up, routers, errors, limits."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app.admin.views import router as admin_router
from app.api import openapi, problems
from app.api.deps import Services
from app.api.docs import router as docs_router
from app.api.headers import SecurityHeaders
from app.api.limits import BodyLimits, RateLimiter
from app.api.media import declared_media_type
from app.approvals.views import router as approvals_router
from app.cases.events import DatabaseEventSink
from app.cases.run_views import router as run_router
from app.cases.service import CaseService
from app.cases.views import router as cases_router
from app.db.migrate import checkpoint_url, ensure_schema
from app.db.session import Database, is_sqlite
from app.jobs import open_job_queue
from app.jobs.views import router as jobs_router
from app.memory.service import MemoryService
from app.memory.views import router as memory_router
from app.metrics.views import router as metrics_router
from app.packstore import PackStore, sync_directory
from app.playbooks.service import install as install_recalculation
from app.playbooks.views import router as playbooks_router
from app.runtime import Runtime
from app.settings import Settings, get_settings
from app.shared.breakers import SharedBreakers
from app.shared.buckets import DbBuckets
from app.shared.changes import SharedState, Watcher
from app.shared.instance import ui_session_secret
from app.ui import auth_views as ui_errors
from app.ui.router import UI_STATIC
from app.ui.router import router as ui_router
from graph.builder import build_graph
from graph.checkpoint import open_checkpointer
from graph.inputs import RawException
from graph.runner import CaseRunner
from packs.domain import DomainPack
from packs.registry import PackRegistry
from packs.tenant import TenantPolicyPack

log = logging.getLogger("exops.api")


async def reload_packs(services: Services, registry: PackRegistry) -> list[str]:
    """Record the folder's packs in the database and rebuild the in-memory view."""
    async with services.db.session() as session:
        changes = await sync_directory(session, registry)
        await services.store.load(session)
    return changes


@asynccontextmanager
async def shared_state(services: Services, breakers: SharedBreakers) -> AsyncIterator[SharedState]:
    """Poll for what other processes change (packs, switches, breakers) and publish this one's
    breaker changes, from the first view of the breakers on (``app/shared/``)."""

    async def reload_store() -> None:
        async with services.db.session() as session:
            await services.store.load(session)

    shared = SharedState(
        services.db,
        poll_seconds=services.settings.shared_poll_seconds,
        watchers=[
            Watcher("packs", lambda: services.store.generation, reload_store),
            Watcher("breakers", lambda: breakers.generation, breakers.pull),
        ],
        publish=breakers.flush,
    )
    breakers.on_publish = shared.wake
    await shared.tick()
    async with shared.running():
        yield shared


@asynccontextmanager
async def open_services(settings: Settings, *, workers: bool = True) -> AsyncIterator[Services]:
    """Everything the API (or a worker) needs, opened in order and closed in reverse. With ``workers``
    this process also runs jobs (cases, answers, the periodic sweep); without, it only queues them
    for ``exops worker`` processes."""
    await asyncio.to_thread(ensure_schema, settings.db_url, migrate=settings.migrate_on_start)
    async with AsyncExitStack() as stack:
        db = Database(settings.db_url)
        stack.push_async_callback(db.close)
        if is_sqlite(settings.db_url):
            saver = await stack.enter_async_context(open_checkpointer("sqlite", settings.checkpoint_path))
        else:
            plain = checkpoint_url(settings.db_url)
            saver = await stack.enter_async_context(open_checkpointer("postgres", url=plain))
        store = PackStore()
        breakers = SharedBreakers(db, failure_threshold=settings.tool_breaker_failures,
                                  reset_seconds=settings.tool_breaker_reset_seconds)  # fmt: skip
        runtime = Runtime(settings, store, events=DatabaseEventSink(db), breakers=breakers.board)
        if settings.memory_enabled:
            runtime.memory = MemoryService(settings, db, store, outbound=runtime.outbound)
        runner = CaseRunner(build_graph(checkpointer=saver), durability=settings.checkpoint_durability)
        jobs = open_job_queue(settings, db)
        await jobs.open()
        stack.push_async_callback(jobs.close)
        cases = CaseService(db, runner, runtime, jobs, settings)
        install_recalculation(cases)
        limiter = RateLimiter(settings.rate_limit_per_minute, DbBuckets(db))
        ui_secret = await ui_session_secret(db, settings.ui_session_secret)
        services = Services(settings, db, store, runtime, runner, cases, limiter, ui_secret)
        registry = PackRegistry.from_directory(settings.packs_dir)
        for change in await reload_packs(services, registry):
            log.info("packs: %s", change)
        services.shared = await stack.enter_async_context(shared_state(services, breakers))
        if workers:  # stopped before anything above closes (the stack unwinds in reverse)
            await cases.start_workers()
            stack.push_async_callback(cases.stop_workers)
            if runtime.memory is not None:
                await runtime.memory.start()
                stack.push_async_callback(runtime.memory.stop)
        loop = asyncio.get_running_loop()

        def on_change(_result: object) -> None:
            asyncio.run_coroutine_threadsafe(reload_packs(services, registry), loop)

        stop_watch = registry.start_watching(on_change)
        stack.callback(stop_watch.set)
        # Everything loaded so far (modules, packs, the compiled graph: ~300k objects) lives as long
        # as the process. Frozen, it is left out of the collector's full passes, which otherwise
        # walk it all (~0.2 s each, a pause for every request in flight). Unfrozen at shutdown, so a
        # process that opens the services again (the tests) can still collect what it dropped.
        gc.freeze()
        stack.callback(gc.unfreeze)
        yield services


def create_app(settings: Settings | None = None, *, workers: bool = True) -> FastAPI:
    """The app; ``workers=False`` serves the API only (``exops serve --no-workers``)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, workers=workers) as services:
            app.state.services = services
            yield

    app = FastAPI(
        title="exops",
        version="0.1.0",
        description="Operational exceptions through an agent graph: cases, approvals, playbooks, packs.",
        lifespan=lifespan,
        docs_url=None,  # served by app/api/docs.py without a CDN
        redoc_url=None,
        dependencies=[Depends(declared_media_type)],  # 415 for a body in an undeclared media type
    )
    problems.install(app)
    openapi.install(app, models=(RawException, DomainPack, TenantPolicyPack))
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes, max_json_depth=settings.max_json_depth)
    app.add_middleware(SecurityHeaders)  # added last, so outermost: on every answer, a 413 included

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    app.include_router(cases_router)
    app.include_router(memory_router)
    app.include_router(approvals_router)
    app.include_router(playbooks_router)
    app.include_router(metrics_router)
    app.include_router(run_router)
    app.include_router(jobs_router)
    app.include_router(admin_router)
    app.include_router(docs_router)
    ui_errors.install(app)
    app.include_router(ui_router)
    app.mount("/ui/static", StaticFiles(directory=UI_STATIC), name="ui-static")
    return app
