"""The registry loads a mixed folder and hot-reloads, keeping the last good version of a bad file."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from packs.loader import LoadResult
from packs.registry import PackRegistry


def test_loads_mixed_folder_by_content(
    tmp_path: Path, write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    write_pack("a/tenant.json", tenant_doc)  # sorted before the domain pack: kind decides the order
    write_pack("b/domain.yaml", domain_doc)
    domain_doc["version"] = "1.10.0"
    write_pack("b/domain-next.yaml", domain_doc)
    registry = PackRegistry.from_directory(tmp_path)
    assert registry.errors == {}
    assert [p.key for p in registry.domains()] == ["mini-markets@1.0.0", "mini-markets@1.10.0"]
    newest = registry.domain("mini-markets")
    assert newest is not None and newest.version == "1.10.0"
    tenant = registry.tenant("mini-bank")
    assert tenant is not None and registry.domain_of(tenant).version == "1.10.0"


def test_duplicate_tenant_is_reported(
    tmp_path: Path, write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    write_pack("domain.yaml", domain_doc)
    write_pack("t1.yaml", tenant_doc)
    second = write_pack("t2.yaml", {**tenant_doc, "tenantName": "Another Mini Bank"})
    copy = write_pack("t3.yaml", tenant_doc)
    registry = PackRegistry.from_directory(tmp_path)
    assert [str(p) for p in registry.errors[str(second)]] == [
        f"{second}: $.tenantId: tenant pack mini-bank is also defined, differently, in {tmp_path / 't1.yaml'}"
    ]
    # the same pack in two files is loaded once, with a notice, not an error
    assert str(copy) not in registry.errors
    tenant = registry.tenant("mini-bank")
    assert tenant is not None and tenant.tenantName == "Mini Bank"


def test_reload_keeps_last_good_version(
    tmp_path: Path, write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    domain_path = write_pack("domain.yaml", domain_doc)
    tenant_path = write_pack("tenant.yaml", tenant_doc)
    registry = PackRegistry.from_directory(tmp_path)
    assert registry.tenant("mini-bank") is not None

    tenant_doc["tenantName"] = "Mini Bank Renamed"
    write_pack("tenant.yaml", tenant_doc)
    registry.reload()
    renamed = registry.tenant("mini-bank")
    assert renamed is not None and renamed.tenantName == "Mini Bank Renamed"

    tenant_path.write_text("tenantId: mini-bank\ntenantName: [broken\n")
    domain_path.write_text(domain_path.read_text().replace("severity: HIGH", "severity: SEVERE", 1))
    result = registry.reload()
    assert sorted(result.kept_last_good) == sorted([str(domain_path), str(tenant_path)])
    kept = registry.tenant("mini-bank")
    assert kept is not None and kept.tenantName == "Mini Bank Renamed"
    assert registry.domain("mini-markets") is not None
    assert [p.path for p in registry.errors[str(domain_path)]] == ["$.severityRules[0].severity"]
    assert registry.errors[str(tenant_path)][0].message.startswith("invalid YAML at line 3")

    write_pack("tenant.yaml", tenant_doc)
    domain_path.write_text(yaml.safe_dump(domain_doc))
    registry.reload()
    assert registry.errors == {}

    tenant_path.unlink()
    registry.reload()
    assert registry.tenant("mini-bank") is None


def test_watching_reloads_on_change(
    tmp_path: Path, write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    write_pack("domain.yaml", domain_doc)
    registry = PackRegistry.from_directory(tmp_path)
    seen = threading.Event()
    results: list[LoadResult] = []

    def on_reload(result: LoadResult) -> None:
        results.append(result)
        if registry.tenant("mini-bank") is not None:
            seen.set()

    stop = registry.start_watching(on_reload)
    try:
        time.sleep(0.3)  # let the watcher start before the change
        write_pack("tenant.yaml", tenant_doc)
        assert seen.wait(timeout=20), f"no reload picked up the new tenant pack: {results}"
    finally:
        stop.set()
