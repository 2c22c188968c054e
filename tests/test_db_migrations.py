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
