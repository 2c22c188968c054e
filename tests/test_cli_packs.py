"""`exops packs ...` from the command line: exit codes and exact output lines."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from app.cli.main import cli

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_ok(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    folder = write_pack("d.yaml", domain_doc).parent
    write_pack("t.yaml", tenant_doc)
    code, out, _ = run("packs", "validate", str(folder))
    assert code == 0 and "2 pack(s) valid (1 domain, 1 tenant)" in out


def test_validate_reports_every_problem_and_fails(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any]
) -> None:
    domain_doc["playbooks"][0]["steps"][0]["tool"] = "nope"
    bad = write_pack("d.yaml", domain_doc)
    broken = write_pack("broken.json", '{"tenantId": ')
    code, out, err = run("packs", "validate", str(bad), str(broken))
    assert code == 1
    assert out.splitlines() == [
        f"{broken}: $: invalid JSON at line 1, column 14: Expecting value",
        f"{bad}: $.playbooks[0].steps[0].tool: unknown tool 'nope'",
    ]
    assert "2 problem(s) in 2 file(s)" in err


def test_validate_tenant_alone_finds_its_domain_in_packs_dir(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    packs_dir = write_pack("library/d.yaml", domain_doc).parent
    tenant = write_pack("mine/t.yaml", tenant_doc)
    assert run("packs", "validate", str(tenant), "--packs", str(packs_dir))[0] == 0
    code, out, _ = run("packs", "validate", str(tenant), "--packs", str(tenant.parent))
    assert code == 1 and out.strip() == f"{tenant}: $.domainName: domain pack 'mini-markets' is not loaded"


def test_validate_refuses_an_endpoint_as_an_upload_would(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    tenant_doc["llm"] = {"baseUrl": "http://127.0.0.1:8080/v1", "model": "m"}
    folder = write_pack("d.yaml", domain_doc).parent
    tenant = write_pack("t.yaml", tenant_doc)
    code, out, _ = run("packs", "validate", str(folder))
    assert code == 1 and out.splitlines() == [
        f"{tenant}: $.llm.baseUrl: refused by the outbound policy: 127.0.0.1 is a loopback address "
        "(allow its network in EXOPS_OUTBOUND_ALLOWED_NETWORKS if this is intended)"
    ]


def test_validate_missing_path() -> None:
    code, out, _ = run("packs", "validate", "/no/such/pack.yaml")
    assert code == 1 and out.strip() == "/no/such/pack.yaml: $: no such file or folder"


def test_test_command_passes_and_fails(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    domain = write_pack("d.yaml", domain_doc)
    write_pack("t.yaml", tenant_doc)
    code, out, _ = run("packs", "test", str(domain), "--packs", str(domain.parent))
    assert code == 0, out
    assert "PASS basics/small_fail [domain-author]" in out and "3 passed, 0 failed" in out

    domain_doc["testSuites"][0]["cases"][0]["expected"]["severity"] = "HIGH"
    write_pack("d.yaml", domain_doc)
    code, out, _ = run(
        "packs", "test", "mini-markets", "--packs", str(domain.parent), "--tenant", "mini-bank"
    )
    assert code == 1
    assert "FAIL basics/small_fail [mini-bank]" in out
    assert "    severity: expected 'HIGH', got 'MEDIUM'" in out
    assert "2 passed, 1 failed" in out


def test_test_command_unknown_tenant(write_pack: Callable[..., Path], domain_doc: dict[str, Any]) -> None:
    domain = write_pack("d.yaml", domain_doc)
    code, _, err = run("packs", "test", str(domain), "--packs", str(domain.parent), "--tenant", "ghost")
    assert code == 2 and "tenant 'ghost' is not in" in err


def test_import_domain_to_yaml(tmp_path: Path) -> None:
    out = tmp_path / "orders.yaml"
    code, _, err = run("packs", "import", str(LEGACY / "orders-domain.json"), "-o", str(out))
    assert code == 0, err
    assert "notice: " in err and f"wrote {out}" in err
    rewritten = yaml.safe_load(out.read_text())
    assert rewritten["severityRules"][0]["condition"].startswith("exceptionType == 'PAYMENT_CAPTURE_FAILED'")
    # the rewritten pack is current: validating it gives no notices
    code, _, err = run("packs", "validate", str(out))
    assert code == 0 and "notice" not in err


def test_import_tenant_uses_sibling_domain_and_prints_json() -> None:
    code, out, err = run("packs", "import", str(LEGACY / "shop-tenant.json"))
    assert code == 0, err
    document = json.loads(out)
    assert document["approvedBusinessProcesses"] == ["PB_PAYMENT_CAPTURE_FAILED", "PB_DUPLICATE"]
    assert "$.approvedBusinessProcesses: missing: every playbook of orders 0.9" in err


def test_import_current_pack_says_so(write_pack: Callable[..., Path], domain_doc: dict[str, Any]) -> None:
    code, _, err = run("packs", "import", str(write_pack("d.yaml", domain_doc)))
    assert code == 0 and "already in the current layout" in err


def test_schema_command() -> None:
    code, out, _ = run("packs", "schema", "tenant")
    assert code == 0 and json.loads(out)["title"] == "exops tenant policy pack"
    assert run("packs", "schema", "other")[0] == 2


def test_console_script_runs() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli.main",
            "packs",
            "validate",
            str(LEGACY / "orders-domain-suites.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "notice: " in done.stderr and "1 pack(s) valid" in done.stdout
