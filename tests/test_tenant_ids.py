"""Tenant ids are kept exactly as users wrote them (``TENANT_FINANCE_001``, ``ACME_CAPITAL``,
``acme-capital``) in packs, the API, the UI, the CLI and keys; two ids differing only in case are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.admin.accounts import InvalidTenantId, TenantIdConflict, check_tenant_id, ensure_tenant
from app.db.migrate import upgrade
from app.db.session import Database
from packs.common import valid_tenant_id
from packs.loader import load_many
from packs.tenant import TenantPolicyPack
from tests.api_helpers import Api
from tests.conftest import FIXTURES

LEGACY_ID = "TENANT_FINANCE_001"
GLOBEX_EXCEPTION = {
    "exceptionId": "TF-1",
    "sourceSystem": "murex",
    "exceptionType": "SETTLEMENT_FAIL",
    "rawPayload": {"tradeId": "T-1", "settlementAmount": 62000, "failReason": "UNMATCHED_INSTRUCTION"},
}


@pytest.mark.parametrize(
    "tenant_id", ["TENANT_FINANCE_001", "ACME_CAPITAL", "acme-capital", "a", "acme.capital", "X" * 64]
)
def test_ids_as_users_wrote_them_are_valid(tenant_id: str) -> None:
    assert valid_tenant_id(tenant_id)
    check_tenant_id(tenant_id)


@pytest.mark.parametrize(
    "tenant_id", ["", "_acme", "-acme", ".acme", "has space", "X" * 65, "caf\u00e9", "a/b"]
)
def test_other_ids_are_refused(tenant_id: str) -> None:
    assert not valid_tenant_id(tenant_id)
    with pytest.raises(InvalidTenantId, match="1 to 64 characters"):
        check_tenant_id(tenant_id)


@pytest.mark.parametrize("reserved", ["tenants", "TENANTS", "Domain-Packs"])
def test_reserved_words_are_refused_in_any_case(reserved: str) -> None:
    with pytest.raises(InvalidTenantId, match="reserved"):
        check_tenant_id(reserved)


def _tenant_doc(tenant_id: str) -> dict[str, object]:
    doc = yaml.safe_load((FIXTURES / "mini-tenant.yaml").read_text())
    doc["tenantId"] = tenant_id
    return doc


def test_a_tenant_pack_keeps_its_id_unchanged() -> None:
    pack = TenantPolicyPack.model_validate(_tenant_doc(LEGACY_ID))
    assert pack.tenantId == LEGACY_ID


def _write(folder: Path, name: str, doc: object) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_a_pack_problem_states_the_rule_not_a_regex(tmp_path: Path) -> None:
    domain = _write(tmp_path, "domain.yaml", yaml.safe_load((FIXTURES / "mini-domain.yaml").read_text()))
    tenant = _write(tmp_path, "tenant.yaml", _tenant_doc("ACME CAPITAL"))
    result = load_many([domain, tenant])
    assert [(p.path, p.message) for p in result.errors] == [
        (
            "$.tenantId",
            "invalid tenant id 'ACME CAPITAL': 1 to 64 characters: letters, digits, '_', '-' or '.', "
            "starting with a letter or a digit (kept exactly as written; case matters)",
        )
    ]


def test_two_tenant_packs_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    domain = _write(tmp_path, "domain.yaml", yaml.safe_load((FIXTURES / "mini-domain.yaml").read_text()))
    upper = _write(tmp_path, "a-upper.yaml", _tenant_doc("ACME"))
    lower = _write(tmp_path, "b-lower.yaml", _tenant_doc("acme"))
    result = load_many([domain, upper, lower])
    assert [p.pack.tenantId for p in result.packs if isinstance(p.pack, TenantPolicyPack)] == ["ACME"]
    assert len(result.errors) == 1
    problem = result.errors[0]
    assert problem.file == str(lower) and problem.path == "$.tenantId"
    assert "tenant acme differs only in case from tenant ACME in" in problem.message
    assert str(upper) in problem.message


async def test_the_database_refuses_ids_differing_only_in_case(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'exops.db'}"
    upgrade(url)
    db = Database(url)
    try:
        async with db.session() as session:
            tenant, created = await ensure_tenant(session, LEGACY_ID, "Finance")
            assert created and tenant.tenant_id == LEGACY_ID
        async with db.session() as session:
            again, created = await ensure_tenant(session, LEGACY_ID, "Finance")
            assert not created and again.tenant_id == LEGACY_ID
        with pytest.raises(TenantIdConflict, match="tenant TENANT_FINANCE_001 already exists"):
            async with db.session() as session:
                await ensure_tenant(session, "tenant_finance_001", "Twin")
        # The index holds even when the check above is bypassed (two requests at the same moment).
        with pytest.raises(IntegrityError):
            async with db.session() as session:
                await session.execute(
                    text("insert into tenants (tenant_id, name, active, created_at) values (:t, 'x', 1, :c)"),
                    {"t": "Tenant_Finance_001", "c": "2026-12-01 00:00:00"},
                )
    finally:
        await db.close()


async def test_api_and_ui_accept_an_upper_case_tenant(api: Api) -> None:
    root = api.as_("platform_admin")
    created = await api.client.post(
        "/admin/tenants", json={"tenantId": LEGACY_ID, "name": "Finance"}, headers=root
    )
    assert created.status_code == 201, created.text
    assert created.json()["tenantId"] == LEGACY_ID
    twin = await api.client.post(
        "/admin/tenants", json={"tenantId": "tenant_finance_001", "name": "x"}, headers=root
    )
    assert twin.status_code == 409
    assert "TENANT_FINANCE_001 already exists" in twin.json()["title"] + twin.json().get("detail", "")
    reserved = await api.client.post(
        "/admin/tenants", json={"tenantId": "Tenants", "name": "x"}, headers=root
    )
    assert reserved.status_code == 422

    issued = await api.client.post(
        f"/admin/{LEGACY_ID}/keys", json={"role": "admin", "name": "migrated"}, headers=root
    )
    assert issued.status_code == 201, issued.text
    key = issued.json()["key"]
    assert LEGACY_ID not in key and LEGACY_ID.lower() not in key  # nothing parses a tenant out of a key
    own = {"X-API-KEY": key}
    policy = await api.client.get("/admin/globex-markets/policy/versions/1.4.0", headers=root)
    document = {
        **policy.json()["content"],
        "tenantId": LEGACY_ID,
        "tenantName": "Finance",
        "version": "1.0.0",
    }
    uploaded = await api.client.post(f"/admin/{LEGACY_ID}/policy?activate=true", json=document, headers=own)
    assert uploaded.status_code == 201, uploaded.text

    accepted = await api.client.post(f"/exceptions/{LEGACY_ID}", json=GLOBEX_EXCEPTION, headers=own)
    assert accepted.status_code == 202, accepted.text
    await api.settle()
    listed = (await api.client.get(f"/exceptions/{LEGACY_ID}", headers=own)).json()
    assert [(c["exceptionId"], c["tenantId"]) for c in listed["items"]] == [("TF-1", LEGACY_ID)]
    detail = (await api.client.get(f"/exceptions/{LEGACY_ID}/TF-1", headers=own)).json()
    assert detail["tenantId"] == LEGACY_ID and detail["record"]["tenantId"] == LEGACY_ID
    assert (await api.client.get(f"/metrics/{LEGACY_ID}", headers=own)).status_code == 200
    # The same id in another case is another (unknown) tenant, not this one.
    assert (await api.client.get("/exceptions/tenant_finance_001", headers=own)).status_code == 403

    signed_in = await api.client.post("/ui/login", data={"credential": key, "next": "/ui/"})
    assert signed_in.status_code == 303
    home = await api.client.get("/ui/")
    assert home.headers["location"] == f"/ui/t/{LEGACY_ID}/exceptions"
    page = await api.client.get(f"/ui/t/{LEGACY_ID}/exceptions")
    assert page.status_code == 200 and "TF-1" in page.text
    case_page = await api.client.get(f"/ui/t/{LEGACY_ID}/exceptions/TF-1")
    assert case_page.status_code == 200 and LEGACY_ID in case_page.text


def _exops(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXOPS_DATA_DIR": str(tmp_path / "data")}
    env.pop("EXOPS_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "app.cli.main", *args], capture_output=True, text=True, env=env,
                          check=False, timeout=120)  # fmt: skip


def test_cli_creates_keys_and_runs_for_an_upper_case_tenant(tmp_path: Path) -> None:
    created = _exops(tmp_path, "tenants", "create", LEGACY_ID, "--name", "Finance")
    assert created.returncode == 0, created.stderr
    assert f"tenant {LEGACY_ID} created" in created.stdout
    twin = _exops(tmp_path, "tenants", "create", "Tenant_Finance_001")
    assert twin.returncode == 2
    assert (
        "tenant TENANT_FINANCE_001 already exists and Tenant_Finance_001 differs from it only in case"
        in " ".join(twin.stderr.split())
    )
    bad = _exops(tmp_path, "tenants", "create", "ACME CAPITAL")
    assert bad.returncode == 2 and "invalid tenant id 'ACME CAPITAL'" in bad.stderr
    key = _exops(tmp_path, "keys", "create", "--tenant", LEGACY_ID, "--role", "operator")
    assert key.returncode == 0, key.stderr
    assert f"of {LEGACY_ID}" in key.stderr

    packs = tmp_path / "packs"
    packs.mkdir()
    _write(packs, "domain.yaml", yaml.safe_load((FIXTURES / "mini-domain.yaml").read_text()))
    _write(packs, "tenant.yaml", _tenant_doc(LEGACY_ID))
    exceptions = tmp_path / "exceptions.json"
    exceptions.write_text(
        json.dumps(
            [{"exceptionId": "TF-2", "exceptionType": "SETTLEMENT_FAIL", "rawPayload": {"tradeId": "T"}}]
        )
    )
    ran = _exops(tmp_path, "run", str(exceptions), "--tenant", LEGACY_ID, "--packs", str(packs), "--json",
                 "--checkpoints", str(tmp_path / "cp.sqlite"))  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    document = json.loads(ran.stdout)
    assert document["tenantId"] == LEGACY_ID
    assert [(r["exceptionId"], r["tenantId"]) for r in document["results"]] == [("TF-2", LEGACY_ID)]
