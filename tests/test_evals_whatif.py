"""What-if before activation: stored cases replayed through a candidate policy, with no side effects.

The candidate raises two types' severity to MEDIUM; among the finished sample cases exactly two
decisions change (GLX-1007's and GLX-1005's severity), and nothing is written anywhere.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from app.db.models import Approval, ExceptionCase, ExceptionEvent, PackVersion, PlaybookState
from app.evals.stored import decided_cases
from app.evals.whatif import run_what_if
from tests.api_helpers import Api, running_api

ROOT = Path(__file__).parent.parent
EXAMPLES = json.loads((ROOT / "docs" / "examples" / "globex-markets-exceptions.json").read_text())[
    "exceptions"
]
POLICY = yaml.safe_load((ROOT / "packs" / "samples" / "tenants" / "globex-markets.yaml").read_text())
TWO_CHANGES = {
    **copy.deepcopy(POLICY),
    "version": "9.9.9",
    "severityOverrides": {
        **POLICY["severityOverrides"],
        "SETTLEMENT_DELAY_NOTICE": "MEDIUM",
        "SEC_MASTER_MISMATCH": "MEDIUM",
    },
}


async def counts(api: Api) -> list[int]:
    async with api.services.db.session() as session:
        return [
            int((await session.execute(select(func.count()).select_from(model))).scalar_one())
            for model in (ExceptionCase, ExceptionEvent, Approval, PlaybookState, PackVersion)
        ]


@pytest.fixture
async def api(tmp_path: Path) -> Any:
    async with running_api(tmp_path, "sqlite") as api:
        response = await api.post_and_settle("globex-markets", EXAMPLES)
        assert response.status_code == 202
        yield api


async def test_decided_cases_export_what_happened(api: Api) -> None:
    async with api.services.db.session() as session:
        cases = await decided_cases(session, "globex-markets")
    by_id = {case.id: case for case in cases}
    assert {"GLX-1001", "GLX-1005", "GLX-1006", "GLX-1007"} <= set(by_id)
    assert (
        by_id["GLX-1007"].expected.severity == "LOW"
        and by_id["GLX-1006"].expected.resolutionStatus == "ESCALATED"
    )
    assert by_id["GLX-1001"].input.rawPayload["tradeId"] == "T-20261114-000912"
    assert all("decided-case" in case.tags for case in cases)


async def test_whatif_lists_exactly_the_two_changed_decisions_and_writes_nothing(api: Api) -> None:
    before = await counts(api)
    services = api.services
    report = await run_what_if(services.db, services.runtime, services.store, "globex-markets", TWO_CHANGES)
    assert report.candidate == "tenant globex-markets@9.9.9" and report.errors == {}
    assert sorted((c.caseId, c.field, c.actual, c.candidate) for c in report.changes) == [
        ("GLX-1005", "severity", "LOW", "MEDIUM"),
        ("GLX-1007", "severity", "LOW", "MEDIUM"),
    ]
    assert report.changedCases == 2 and report.cases >= 4
    assert await counts(api) == before
    same = await run_what_if(services.db, services.runtime, services.store, "globex-markets", POLICY)
    assert same.changes == []


async def test_whatif_over_the_admin_api(api: Api) -> None:
    headers = {**api.as_("admin"), "content-type": "application/json"}
    response = await api.client.post(
        "/admin/globex-markets/policy/whatif?last=20", content=json.dumps(TWO_CHANGES), headers=headers
    )
    assert response.status_code == 200, response.text
    assert {(c["caseId"], c["field"]) for c in response.json()["changes"]} == {
        ("GLX-1005", "severity"),
        ("GLX-1007", "severity"),
    }
    bad = {**TWO_CHANGES, "severityOverrides": {"SEC_MASTER_MISMATCH": "HUGE"}}
    refused = await api.client.post(
        "/admin/globex-markets/policy/whatif", content=json.dumps(bad), headers=headers
    )
    assert refused.status_code == 422
    assert any(e["path"].startswith("$.severityOverrides") for e in refused.json()["errors"])
    other = await api.client.post(
        "/admin/acme-capital/policy/whatif", content=json.dumps(TWO_CHANGES), headers=headers
    )
    assert other.status_code in (401, 403)
    missing = await api.client.post("/admin/globex-markets/policy/versions/0.0.404/whatif", headers=headers)
    assert missing.status_code == 404


async def test_whatif_on_the_packs_page_next_to_activate(api: Api) -> None:
    from tests.test_ui_packs_tools import sign_in, words

    csrf = await sign_in(api, "admin")
    t = "/ui/t/globex-markets/packs"
    stored = await api.client.post(
        f"{t}/policy/upload",
        data={"csrf_token": csrf, "document": yaml.safe_dump(TWO_CHANGES, sort_keys=False)},
    )
    assert stored.status_code == 303
    page = await api.client.get(f"{t}/policy/9.9.9")
    assert (
        f'action="{t}/policy/9.9.9/activate"' in page.text
        and f'action="{t}/policy/9.9.9/whatif"' in page.text
    )
    before = await counts(api)
    shown = await api.client.post(f"{t}/policy/9.9.9/whatif", data={"csrf_token": csrf, "last": "20"})
    assert shown.status_code == 200, shown.text
    said = words(shown)
    assert "2 of" in said and "would decide differently under tenant globex-markets@9.9.9" in said
    assert "GLX-1005 severity LOW MEDIUM" in said and "GLX-1007 severity LOW MEDIUM" in said
    assert await counts(api) == before
    refused = await api.client.post(f"{t}/policy/9.9.9/whatif", data={"last": "20"})
    assert refused.status_code in (400, 403)


async def test_from_cases_command_writes_a_dataset_that_loads(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``exops eval dataset from-cases``: the file it writes is a valid dataset (schema comment,
    expected answers); an unknown tenant and an empty window are clear errors (exit 3)."""
    import asyncio

    from typer.testing import CliRunner

    import app.settings
    from app.cli.main import cli
    from evals.dataset import load_dataset

    monkeypatch.setattr(app.settings, "get_settings", lambda: api.settings)
    runner = CliRunner()

    def invoke(*args: str) -> Any:  # the command runs its own event loop: off this one
        return asyncio.to_thread(runner.invoke, cli, ["eval", "dataset", "from-cases", *args])

    out = tmp_path / "decided.yaml"
    result = await invoke("--tenant", "globex-markets", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# yaml-language-server: $schema=")
    dataset = load_dataset(out)
    assert dataset.domain == "capital-markets" and f"{len(dataset.cases)} cases written" in result.output
    by_id = {case.id: case for case in dataset.cases}
    assert by_id["GLX-1007"].expected.severity == "LOW" and "decided-case" in by_id["GLX-1007"].tags
    last = await invoke("--tenant", "globex-markets", "--last", "2")
    assert last.exit_code == 0 and len(yaml.safe_load(last.stdout)["cases"]) == 2
    later = await invoke("--tenant", "globex-markets", "--since", "2999-01-01")
    assert later.exit_code == 3 and "no finished cases since 2999-01-01" in later.output
    bad = await invoke("--tenant", "globex-markets", "--since", "yesterday")
    assert bad.exit_code == 3 and "--since 'yesterday'" in bad.output
    unknown = await invoke("--tenant", "nobody")
    assert unknown.exit_code == 3 and "--tenant nobody" in unknown.output
