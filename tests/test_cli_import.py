"""`exops packs import` of files and folders, and the messages a migrating user acts on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from app.cli.main import cli

runner = CliRunner()

DOMAIN: dict[str, Any] = {
    "domainName": "Shop",
    "exceptionTypes": {"PAYMENT_FAILED": {"description": "A payment failed", "defaultSeverity": "high"}},
    "tools": {
        "apiActions": [
            {"name": "refundPayment", "description": "Refund", "argsSchema": {"paymentId": "string"}}
        ]
    },
    "playbooks": [{"exceptionType": "PAYMENT_FAILED", "steps": ["Refund it with refundPayment(paymentId)"]}],
    "guardrails": {"allowLists": [], "blockLists": []},
}
TENANT: dict[str, Any] = {
    "tenantId": "TENANT_SHOP_001",
    "domainName": "Shop",
    "approvedTools": ["refundPayment"],
}


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_a_file_that_cannot_be_imported_is_reported_against_itself_not_the_output(tmp_path: Path) -> None:
    source = write(
        tmp_path / "old" / "shop.json", {**DOMAIN, "guardrails": {"allowLists": ["refundPayment", "nope"]}}
    )
    out = tmp_path / "new" / "shop.yaml"
    code, stdout, err = run("packs", "import", str(source), "-o", str(out), "--packs", str(tmp_path / "none"))
    assert code == 1
    assert stdout.splitlines() == [f"{source}: $.guardrails.allowLists[1]: unknown tool 'nope'"]
    assert str(out) not in stdout + err and not out.exists()


def test_a_file_imports_with_its_notices(tmp_path: Path) -> None:
    source = write(tmp_path / "old" / "2.0.0.json", DOMAIN)
    out = tmp_path / "new" / "shop.yaml"
    code, _, err = run("packs", "import", str(source), "-o", str(out), "--packs", str(tmp_path / "none"))
    assert code == 0, err
    assert f"notice: {source}: $.version: missing: took 2.0.0 from the file name 2.0.0.json" in err
    assert f"wrote {out}" in err
    code, _, err = run("packs", "import", str(out), "--packs", str(tmp_path / "none"))
    assert code == 0 and "already in the current layout" in err


def test_a_tenant_whose_domain_beside_it_is_broken(tmp_path: Path) -> None:
    domain = write(tmp_path / "shop.json", {**DOMAIN, "exceptionTypes": {"PAYMENT_FAILED": {}}})
    tenant = write(tmp_path / "tenant.json", TENANT)
    code, stdout, _ = run("packs", "import", str(tenant), "--packs", str(tmp_path / "none"))
    assert code == 1
    assert stdout.splitlines() == [
        f"{tenant}: $.domainName: not checked: its domain pack 'Shop' ({domain}) did not load; fix that file first",
        f"{domain}: $.exceptionTypes.PAYMENT_FAILED.description: required field is missing",
    ]


def test_a_folder_at_once(tmp_path: Path) -> None:
    old = tmp_path / "old"
    write(old / "runtime" / "domainpacks" / "TENANT_SHOP_001" / "Shop" / "1.1.0.json", DOMAIN)
    write(old / "tenantpacks" / "shop.json", TENANT)
    write(old / "tenantpacks" / "copy.json", TENANT)
    broken = write(
        old / "tenantpacks" / "broken.json", {**TENANT, "tenantId": "OTHER", "approvedTools": ["nope"]}
    )
    out = tmp_path / "new"
    code, stdout, err = run("packs", "import", str(old), "-o", str(out), "--packs", str(tmp_path / "none"))
    assert code == 1
    assert stdout.splitlines() == [f"{broken}: $.approvedTools[0]: unknown tool 'nope' in domain 'Shop'"]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "IMPORT-NOTES.md",
        "domains/Shop-1.1.0.json",
        "tenants/TENANT_SHOP_001.json",
    ]
    notes = (out / "IMPORT-NOTES.md").read_text()
    assert f"## {broken}: not imported\n- `$.approvedTools[0]`: unknown tool 'nope' in domain 'Shop'" in notes
    assert (
        f"## {old / 'tenantpacks' / 'shop.json'}: the same pack as {old / 'tenantpacks' / 'copy.json'}, written once"
        in notes
    )
    assert "- `$.version`: missing: took 1.1.0 from the file name 1.1.0.json" in notes
    assert "1 file(s) not imported" in err
    tenant = json.loads((out / "tenants" / "TENANT_SHOP_001.json").read_text())
    assert tenant["approvedBusinessProcesses"] == ["PB_PAYMENT_FAILED"]
    code, stdout, _ = run("packs", "validate", str(out), "--packs", str(out))
    assert code == 0 and "2 pack(s) valid" in stdout


def test_an_output_folder_inside_the_source_is_not_read_back(tmp_path: Path) -> None:
    write(tmp_path / "shop.json", DOMAIN)
    for _ in range(2):
        code, _, err = run(
            "packs", "import", str(tmp_path), "-o", str(tmp_path / "new"), "--packs", str(tmp_path / "x")
        )
        assert code == 0, err
    assert "wrote 1 pack(s)" in err


def test_a_folder_needs_an_output_folder(tmp_path: Path) -> None:
    write(tmp_path / "shop.json", DOMAIN)
    code, _, err = run("packs", "import", str(tmp_path))
    assert code == 2 and "needs -o OUTDIR" in err


def test_packs_test_and_run_say_why_a_pack_is_missing(tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    domain = write(packs / "shop.json", {**DOMAIN, "exceptionTypes": {"PAYMENT_FAILED": {}}})
    tenant = write(packs / "tenant.json", TENANT)
    code, stdout, err = run("packs", "test", "Shop", "--packs", str(packs))
    assert code == 2
    assert "loaded: none" not in stdout + err
    assert f"{domain}: $.exceptionTypes.PAYMENT_FAILED.description: required field is missing" in stdout
    cases = write(
        tmp_path / "cases.json", [{"exceptionId": "E1", "exceptionType": "PAYMENT_FAILED", "rawPayload": {}}]
    )
    code, _, err = run("run", str(cases), "--tenant", "TENANT_SHOP_001", "--packs", str(packs))
    assert code == 2
    assert "tenant 'TENANT_SHOP_001' has no policy pack" in err
    assert f"{tenant}: $.domainName: not checked: its domain pack 'Shop' ({domain}) did not load" in err
