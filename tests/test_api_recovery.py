"""Nothing accepted is lost: work accepted before a stop is processed after the restart."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.api_helpers import POSTGRES_URL, postgres_database, running_api


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param(
            "postgres",
            marks=[pytest.mark.postgres, pytest.mark.skipif(POSTGRES_URL is None, reason="no PostgreSQL")],
        ),
    ],
)
async def test_accepted_but_unprocessed_work_resumes_after_restart(tmp_path: Path, backend: str) -> None:
    async with AsyncExitStack() as stack:
        url = (
            await stack.enter_async_context(postgres_database())
            if backend == "postgres"
            else f"sqlite:///{tmp_path / 'x.db'}"
        )
        async with running_api(tmp_path, backend, database_url=url) as api:
            await api.services.cases.stop_workers()  # the process is about to die: nothing will run
            response = await api.client.post(
                "/exceptions/globex-markets",
                json=[
                    {"exceptionId": f"R-{i}", "exceptionType": "SETTLEMENT_DELAY_NOTICE", "rawPayload": {}}
                    for i in range(3)
                ],
                headers=api.as_("operator"),
            )
            assert response.status_code == 202
            listing = (await api.client.get("/exceptions/globex-markets", headers=api.as_("viewer"))).json()
            assert {i["processing"] for i in listing["items"]} == {"accepted"}
        async with running_api(tmp_path, backend, database_url=url) as api:  # restart on the same database
            await api.settle()
            listing = (await api.client.get("/exceptions/globex-markets", headers=api.as_("viewer"))).json()
            assert listing["total"] == 3
            assert {(i["processing"], i["resolutionStatus"]) for i in listing["items"]} == {
                ("done", "RESOLVED")
            }
