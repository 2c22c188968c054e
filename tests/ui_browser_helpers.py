"""The product as an operator meets it: `exops start` in its own process, the sample exceptions
ingested over HTTP, and Debian's chromium driven headless by Playwright.

Screenshots of every page go to ``test-artifacts/screenshots/`` (kept by CI as artifacts).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "docs" / "examples" / "globex-markets-exceptions.json"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
KEY_LINE = re.compile(r"^\s+(\S+)\s+(viewer|operator|admin|platform_admin)\s+(exo_\S+)\s*$")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Product:
    url: str
    keys: dict[tuple[str, str], str]  # (tenant or "(platform)", role) -> key
    process: subprocess.Popen[str]

    def key(self, role: str, tenant: str = "globex-markets") -> str:
        return self.keys[(tenant, role)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_product(data_dir: Path) -> Iterator[Product]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXOPS_")}
    env |= {"EXOPS_DATA_DIR": str(data_dir), "EXOPS_PORT": str(port), "EXOPS_DEMO": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "start"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, bufsize=1,
    )  # fmt: skip
    keys: dict[tuple[str, str], str] = {}
    url = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            if match := KEY_LINE.match(line):
                keys[(match[1], match[2])] = match[3]
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
            assert time.monotonic() < deadline, "exops start did not come up in 60 s"
        assert keys, "exops start printed no demo keys"
        _wait_healthy(url)
        yield Product(url, keys, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_healthy(url: str) -> None:
    for _ in range(100):
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("exops never answered /health")


def ingest_examples(product: Product) -> list[str]:
    """POST the sample Globex exceptions and wait until every one is processed (or waits for a person)."""
    body = json.loads(EXAMPLES.read_text())["exceptions"]
    headers = {"X-API-KEY": product.key("operator")}
    response = httpx.post(f"{product.url}/exceptions/globex-markets", json=body, headers=headers, timeout=30)
    assert response.status_code == 202, response.text
    ids = [item["exceptionId"] for item in body]
    for _ in range(300):
        listing = httpx.get(
            f"{product.url}/exceptions/globex-markets?limit=100", headers=headers, timeout=10
        ).json()
        done = [c for c in listing["items"] if c["processing"] in ("done", "waiting")]
        if len(done) >= len(ids):
            return ids
        time.sleep(0.1)
    raise AssertionError("the sample exceptions were not processed in 30 s")
