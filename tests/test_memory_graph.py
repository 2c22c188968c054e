"""The whole graph with memory on: three cash breaks resolved by the write-off playbook, a fourth a
person rejected; a new similar cash break shows those four as triage evidence with their outcomes,
and its confidence is lowered because of the rejection (the issue's "payment capture" cases are the
capital-markets sample's CASH_BREAK: a payment that did not land where expected)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.db.models import MemoryQueue
from tests.api_helpers import Api, running_api
from tests.conftest import SAMPLES, _backends
from tests.memory_helpers import HashEmbedder
from tests.test_ui_exceptions import get, sign_in

T = "globex-markets"


def cash_break(exception_id: str, amount: int, account: str = "NOSTRO-EUR-DB-004") -> dict[str, Any]:
    return {
        "exceptionId": exception_id, "exceptionType": "CASH_BREAK", "sourceSystem": "nostro-recon",
        "rawPayload": {"cashAccountId": account, "currency": "EUR", "expectedAmount": 10_000 + amount,
                       "actualAmount": 10_000, "breakAmount": amount, "valueDate": "2026-11-30",
                       "nostroBank": "DEUTDEFF", "note": "card payment capture not received on nostro"},
    }  # fmt: skip


@pytest.fixture(params=_backends())
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """Globex as shipped, except that HIGH cases wait for a person (so one can override)."""
    packs = tmp_path / "packs"
    shutil.copytree(SAMPLES, packs)
    tenant_file = packs / "tenants" / "globex-markets.yaml"
    tenant = yaml.safe_load(tenant_file.read_text())
    tenant["humanApprovalRules"] = [{"severityIn": ["HIGH"], "requireApproval": True}]
    tenant_file.write_text(yaml.safe_dump(tenant, sort_keys=False))
    async with running_api(tmp_path, request.param, packs_dir=packs, memory_enabled=True) as running:
        assert running.services.runtime.memory is not None
        running.services.runtime.memory.local = HashEmbedder()
        yield running


async def case(api: Api, exception_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/exceptions/{T}/{exception_id}", headers=api.as_("viewer"))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_new_case_sees_past_outcomes_and_the_override_lowers_confidence(api: Api) -> None:
    memory = api.services.runtime.memory
    assert memory is not None
    await memory.stop()  # no indexer: what a process killed after finishing the cases leaves behind
    for number, amount in enumerate((1200, 900, 1500), start=1):
        await api.post_and_settle(T, cash_break(f"PAY-{number}", amount))
        assert (await case(api, f"PAY-{number}"))["resolutionStatus"] == "RESOLVED"
    await api.post_and_settle(T, cash_break("PAY-4", 1_500_000))
    listing = (await api.client.get(f"/approvals/{T}", headers=api.as_("viewer"))).json()
    [approval] = [item for item in listing["items"] if item["exceptionId"] == "PAY-4"]
    rejected = await api.client.post(f"/approvals/{T}/{approval['approvalId']}/reject",
                                     json={"reason": "a card scheme chargeback, not a write-off"},
                                     headers=api.as_("operator"))  # fmt: skip
    assert rejected.status_code == 200, rejected.text
    assert (await case(api, "PAY-4"))["resolutionStatus"] == "REJECTED"
    async with api.services.db.session() as session:  # queued by the projection with each finished case
        queued = {row.exception_id for row in (await session.execute(MemoryQueue.__table__.select())).all()}
    assert queued == {"PAY-1", "PAY-2", "PAY-3", "PAY-4"}
    assert await memory.drain() == 4  # what the indexer (or the sweep) does with them

    await api.post_and_settle(T, cash_break("PAY-5", 1100))
    new = await case(api, "PAY-5")
    triage = next(stage for stage in new["decisions"] if stage["stage"] == "triage")
    similar = [e["detail"] for e in triage["evidence"] if e["kind"] == "similar_case"]
    shown = {detail.split(" ", 1)[0]: detail for detail in similar if detail.startswith("PAY-")}
    assert set(shown) == {"PAY-1", "PAY-2", "PAY-3", "PAY-4"}
    assert all(": RESOLVED; playbook cash-break-small-writeoff" in shown[f"PAY-{n}"] for n in (1, 2, 3))
    assert ": REJECTED" in shown["PAY-4"] and "overridden by" in shown["PAY-4"]
    [moved] = [detail for detail in similar if detail.startswith("confidence lowered")]
    assert "1 of 4 similar cases (PAY-4)" in moved
    recurrence = [e["detail"] for e in triage["evidence"] if e["kind"] == "recurrence"]
    assert recurrence and "cashAccountId=NOSTRO-EUR-DB-004" in recurrence[0] and "PAY-4" in recurrence[0]
    before = float(moved.split(" from ")[1].split(" ")[0])
    assert triage["confidence"] == pytest.approx(before - 0.3 / 4, abs=0.01)
    await sign_in(api, "viewer")
    page = await get(api, f"/ui/t/{T}/exceptions/PAY-5")
    panel = page.split('id="similar-h"', 1)[1].split("</section>", 1)[0]
    assert all(f'/exceptions/PAY-{n}"' in panel for n in (1, 2, 3, 4))
    assert "overridden by a person" in panel and "cash-break-small-writeoff" in panel
    assert "PAY-4" in new["result"]["recurrenceOf"]  # and counted: the others ran before memory held any
    metrics = (await api.client.get(f"/metrics/{T}", headers=api.as_("viewer"))).json()
    assert metrics["recurrences"] == 1
