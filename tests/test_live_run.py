"""`exops run --tool-mode live` against a local HTTP server standing in for a tenant's systems.

The sample capital-markets pack is copied with its endpoints pointed at the stand-in, which
records every request it receives. The run is a real process (settings from the environment, the
real httpx client, real sockets on loopback), and its audit trail must match what the stand-in
received request by request: method, path, body, idempotency key; the bearer token reaches the wire
but never the output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

SAMPLES = Path(__file__).parent.parent / "packs" / "samples"
TOKEN = "tok-9f27c1d4e8b3a6f0"
GLX_1001 = {
    "exceptionId": "GLX-1001",
    "exceptionType": "SETTLEMENT_FAIL",
    "sourceSystem": "murex",
    "rawPayload": {
        "instructionId": "SI-CREST-7712004", "tradeId": "T-20261114-000912", "isin": "GB0002634946",
        "csd": "CREST", "settlementAmount": 62000, "failReason": "UNMATCHED_INSTRUCTION", "daysFailing": 4,
        "counterpartyTier": "TIER_1",
    },
}  # fmt: skip


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class StandIn:
    """A tenant's systems: answers every call with 200 and a small JSON body, keeps what it got.
    ``fail_paths`` answer 500 instead (each request to them is still recorded)."""

    received: list[Received] = field(default_factory=list)
    fail_paths: set[str] = field(default_factory=set)
    port: int = 0


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            body = json.loads(raw) if raw else None
            state.received.append(
                Received(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
            )
            failing = parts.path in state.fail_paths
            reply = json.dumps({"ok": not failing, "path": parts.path}).encode()
            self.send_response(500 if failing else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _packs(tmp_path: Path, port: int) -> Path:
    """The sample capital-markets pack and globex-markets policy, endpoints on the stand-in."""
    packs = tmp_path / "packs"
    (packs / "domains").mkdir(parents=True)
    (packs / "tenants").mkdir()
    domain = (SAMPLES / "domains" / "capital-markets.yaml").read_text()
    domain = re.sub(r"https://([a-z-]+)\.example\.internal/", rf"http://127.0.0.1:{port}/\1/", domain)
    (packs / "domains" / "capital-markets.yaml").write_text(domain)
    tenant = (SAMPLES / "tenants" / "globex-markets.yaml").read_text()
    (packs / "tenants" / "globex-markets.yaml").write_text(tenant)
    return packs


def _run(tmp_path: Path, port: int, *, allow_loopback: bool = True) -> dict[str, Any]:
    (tmp_path / "in.json").write_text(json.dumps([GLX_1001]))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EXOPS_")},
        "EXOPS_PACKS_DIR": str(_packs(tmp_path, port)),
        "EXOPS_DATA_DIR": str(tmp_path / "var"),
        "EXOPS_SECRETS": json.dumps({"CAPMKTS_API_TOKEN": TOKEN}),
        "EXOPS_TOOL_BACKOFF_SECONDS": "0",
    }
    if allow_loopback:
        env["EXOPS_OUTBOUND_ALLOWED_NETWORKS"] = '["127.0.0.0/8"]'
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "run", str(tmp_path / "in.json"), "--tenant", "globex-markets",
         "--tool-mode", "live", "--json", "--audit"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout and TOKEN not in done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document["results"][0]


def _tool_calls(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["data"] for e in result["auditTrail"] if e["type"] in ("tool_call", "rollback")]


def test_live_run_sends_exactly_what_the_audit_trail_records(tmp_path: Path, stand_in: StandIn) -> None:
    result = _run(tmp_path, stand_in.port)
    calls = _tool_calls(result)
    assert result["resolutionStatus"] == "RESOLVED", result["escalation"]
    assert calls and len(calls) == len(stand_in.received)
    for call, got in zip(calls, stand_in.received, strict=True):
        request = call["request"]
        assert call["status"] == "SUCCESS" and call["mode"] == "live" and call["attempts"] == 1
        assert (got.method, f"http://127.0.0.1:{stand_in.port}{got.path}") == (
            request["method"],
            request["url"],
        )
        if got.method == "GET":
            assert {k: v[0] for k, v in got.query.items()} == request["params"]
        else:
            assert got.body == request["json"]
        assert got.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request["headers"]["Authorization"] == "Bearer <secret CAPMKTS_API_TOKEN>"
        assert got.headers.get("Idempotency-Key") == request["headers"].get("Idempotency-Key")
        assert call["response"] == {"status": 200, "body": {"ok": True, "path": got.path}}
    mutating = [c for c in calls if c["request"]["method"] != "GET"]
    assert mutating and all(len(c["request"]["headers"]["Idempotency-Key"]) == 32 for c in mutating)
    assert stand_in.received[0].path.startswith("/settlements/api/instructions/")
    assert [(r.method, r.path, r.query, r.body) for r in stand_in.received] == [
        ("GET", "/settlements/api/instructions/status", {"instructionId": ["SI-CREST-7712004"]}, None),
        ("POST", "/settlements/api/instructions/retry", {},
         {"instructionId": "SI-CREST-7712004", "refreshSsi": True, "reason": "UNMATCHED_INSTRUCTION"}),
    ]  # fmt: skip


def test_a_failing_system_is_retried_then_the_case_escalates(tmp_path: Path, stand_in: StandIn) -> None:
    stand_in.fail_paths = {"/settlements/api/instructions/retry"}
    result = _run(tmp_path, stand_in.port)
    [failed] = [c for c in _tool_calls(result) if c["tool"] == "retry_settlement_instruction"]
    attempts = [r for r in stand_in.received if r.path == "/settlements/api/instructions/retry"]
    assert (
        failed["status"] == "FAILED" and failed["attempts"] == len(attempts) == 2
    )  # 1 retry (pack: retries 1)
    assert [a["httpStatus"] for a in failed["attemptLog"]] == [500, 500]
    assert len({a.headers["Idempotency-Key"] for a in attempts}) == 1  # the same key on the retry
    assert result["resolutionStatus"] == "ESCALATED"
    assert "retry_settlement_instruction" in result["escalation"]["reason"]


def test_loopback_is_refused_unless_the_operator_allows_it(tmp_path: Path, stand_in: StandIn) -> None:
    result = _run(tmp_path, stand_in.port, allow_loopback=False)
    [first, *_] = _tool_calls(result)
    assert first["status"] == "FAILED" and first["attempts"] == 0
    assert "loopback" in first["error"] and "EXOPS_OUTBOUND_ALLOWED_NETWORKS" in first["error"]
    assert stand_in.received == []
    assert result["resolutionStatus"] == "ESCALATED"
