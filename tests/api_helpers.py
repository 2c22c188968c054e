"""A running API for tests: real app, real database (SQLite, or PostgreSQL when
EXOPS_TEST_POSTGRES_URL is set), sample packs, two tenants with a key per role, and a platform admin."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from app.admin.accounts import ensure_tenant, issue_key
from app.api.deps import Services
from app.api.main import create_app, open_services
from app.settings import Settings

SAMPLES = Path(__file__).parent.parent / "packs" / "samples"
POSTGRES_URL = os.environ.get(
    "EXOPS_TEST_POSTGRES_URL"
)  # e.g. postgresql://exops:exops@127.0.0.1:5432/postgres
TENANTS = ("globex-markets", "acme-capital")
JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"


@dataclass
class Api:
    client: httpx.AsyncClient
    services: Services
    settings: Settings
    keys: dict[tuple[str, str], str] = field(
        default_factory=dict
    )  # (tenant, role) -> key; ("*", "platform_admin")

    def as_(self, role: str, tenant: str = "globex-markets") -> dict[str, str]:
        return {
            "X-API-KEY": self.keys[("*", "platform_admin") if role == "platform_admin" else (tenant, role)]
        }

    async def settle(self) -> None:
        """Wait until the background workers are done with everything queued."""
        await self.services.cases.drain()

    async def post_and_settle(self, tenant: str, body: Any, **headers: str) -> httpx.Response:
        response = await self.client.post(
            f"/exceptions/{tenant}", json=body, headers={**self.as_("operator", tenant), **headers}
        )
        await self.settle()
        return response


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty database on the test server, dropped afterwards."""
    assert POSTGRES_URL is not None
    name = f"exops_t_{uuid.uuid4().hex[:10]}"
    admin = make_url(POSTGRES_URL)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    for attempt in range(5):  # CREATE DATABASE can collide with another test's DROP on a busy server
        try:
            with psycopg.connect(conninfo, autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.OperationalError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await _drop_database(conninfo, name)


async def _drop_database(conninfo: str, name: str) -> None:
    """Drop a test database; FORCE cannot end an autovacuum worker that just started on it (that
    needs superuser), but such a worker is short-lived, so wait for it and try again."""
    for attempt in range(20):
        try:
            with psycopg.connect(conninfo, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == 19:
                raise
            await asyncio.sleep(0.25)


@asynccontextmanager
async def running_api(tmp_path: Path, backend: str, **overrides: Any) -> AsyncIterator[Api]:
    async with AsyncExitStackish() as stack:
        url = overrides.pop("database_url", None)
        if url is None and backend == "postgres":
            url = await stack.enter(postgres_database())
        url = url or f"sqlite:///{tmp_path / 'exops.db'}"
        settings = Settings(
            data_dir=tmp_path, database_url=url, packs_dir=overrides.pop("packs_dir", SAMPLES),
            deadline_sweep_seconds=3600, jwt_secret=JWT_SECRET, rate_limit_per_minute=overrides.pop("rate", 10_000),
            memory_enabled=overrides.pop("memory_enabled", False),  # tests/test_memory*.py turn it on
            **overrides,
        )  # fmt: skip
        app = create_app(settings)
        services = await stack.enter(open_services(settings))
        app.state.services = services
        api = Api(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://exops.test"),
            services,
            settings,
        )
        async with services.db.session() as session:
            for tenant in TENANTS:
                await ensure_tenant(session, tenant, tenant.replace("-", " ").title())
                for role in ("viewer", "operator", "admin"):
                    api.keys[(tenant, role)] = (
                        await issue_key(session, tenant_id=tenant, role=role, name=role)
                    ).plaintext  # type: ignore[arg-type]
            api.keys[("*", "platform_admin")] = (
                await issue_key(session, tenant_id=None, role="platform_admin", name="root")
            ).plaintext
        async with api.client:
            yield api


class AsyncExitStackish:
    """A tiny async exit stack that keeps the fixture above readable."""

    def __init__(self) -> None:
        from contextlib import AsyncExitStack

        self._stack = AsyncExitStack()

    async def __aenter__(self) -> AsyncExitStackish:
        await self._stack.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.__aexit__(*exc)

    async def enter(self, manager: Any) -> Any:
        return await self._stack.enter_async_context(manager)


async def plan_digest_of(api: Api, exception_id: str, tenant: str = "globex-markets") -> str:
    """The planDigest a step answer sends back, read the way an API client reads it."""
    response = await api.client.get(
        f"/exceptions/{tenant}/{exception_id}/playbook", headers=api.as_("viewer", tenant)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["planDigest"])
