"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from app.db.migrate import upgrade
from app.db.models import Base, owned_here
from app.db.session import sync_url
from tests.api_helpers import POSTGRES_URL, postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres,
                pytest.mark.skipif(POSTGRES_URL is None, reason="EXOPS_TEST_POSTGRES_URL not set")])])  # fmt: skip
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'exops.db'}"
        return
    async with postgres_database() as url:
        yield url


# SQLite cannot reflect the expression index on lower(tenant_id), so autogenerate skips comparing it
# there (PostgreSQL compares it); tests/test_tenant_ids.py checks that the index refuses case twins.
@pytest.mark.filterwarnings("ignore:.*expression-based index uq_tenants_id_folded")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_match_the_models(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)  # running it again changes nothing
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_name": owned_here})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_upgrading_carries_accepted_work_over_to_jobs(database_url: str) -> None:
    """Cases accepted (or cut off) before jobs were durable get a job; an approval a crash left
    DECIDING is pending again (migration 0008)."""
    from sqlalchemy import text

    upgrade(database_url, "0007")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO tenants (tenant_id, name, active, created_at) "
                                    "VALUES ('t1', 'T', true, CURRENT_TIMESTAMP)"))  # fmt: skip
            for exception_id, processing in (("A", "accepted"), ("B", "running"), ("C", "done")):
                connection.execute(
                    text("INSERT INTO exceptions (tenant_id, exception_id, source_system, status, raw, processing, "
                         "events_synced, received_at, updated_at) VALUES ('t1', :e, 's', 'OPEN', '{}', :p, 0, "
                         "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                    {"e": exception_id, "p": processing},
                )  # fmt: skip
            connection.execute(text("INSERT INTO approvals (tenant_id, approval_id, exception_id, status, payload, "
                                    "created_at, deadline) VALUES ('t1', 'APR-C-1', 'C', 'DECIDING', '{}', "
                                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))  # fmt: skip
        upgrade(database_url)
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                jobs = connection.execute(
                    text("SELECT args->>'exception_id' FROM procrastinate_jobs WHERE task_name = 'exops.process' "
                         "AND status = 'todo' AND lock = 'case:t1:' || (args->>'exception_id')")
                ).scalars()  # fmt: skip
            else:
                jobs = connection.execute(
                    text("SELECT exception_id FROM case_jobs WHERE kind = 'process' AND status = 'queued'")
                ).scalars()
            assert sorted(jobs) == ["A", "B"]
            assert connection.execute(text("SELECT status FROM approvals")).scalar_one() == "PENDING"
    finally:
        engine.dispose()
