"""`exops db upgrade`, `exops tenants create`, `exops keys create` against a fresh data folder."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path


def exops(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXOPS_DATA_DIR": str(tmp_path)}
    env.pop("EXOPS_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "app.cli.main", *args], capture_output=True, text=True, env=env,
                          check=False, timeout=120)  # fmt: skip


def test_db_tenants_and_keys(tmp_path: Path) -> None:
    upgraded = exops(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    tables = {
        row[0]
        for row in sqlite3.connect(tmp_path / "exops.db").execute(
            "select name from sqlite_master where type='table'"
        )
    }
    assert {
        "tenants",
        "api_keys",
        "exceptions",
        "exception_events",
        "approvals",
        "pack_versions",
        "alembic_version",
    } <= tables

    created = exops(tmp_path, "tenants", "create", "shop-one", "--name", "Shop One")
    assert created.returncode == 0 and "tenant shop-one created" in created.stdout
    assert "already exists" in exops(tmp_path, "tenants", "create", "shop-one").stdout

    key = exops(tmp_path, "keys", "create", "--tenant", "shop-one", "--role", "operator", "--name", "ci")
    assert key.returncode == 0, key.stderr
    last = key.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"exo_[0-9a-f]{12}_\S{20,}", last)
    stored = (
        sqlite3.connect(tmp_path / "exops.db")
        .execute("select secret_hash, role, tenant_id from api_keys")
        .fetchall()
    )
    assert stored == [(stored[0][0], "operator", "shop-one")] and last.split("_", 2)[2] not in stored[0][0]

    assert exops(tmp_path, "keys", "create", "--tenant", "nobody", "--role", "viewer").returncode == 1
    assert exops(tmp_path, "keys", "create", "--tenant", "shop-one", "--role", "king").returncode == 2
    admin = exops(tmp_path, "keys", "create", "--platform-admin")
    assert admin.returncode == 0 and admin.stdout.strip().startswith("exo_")
