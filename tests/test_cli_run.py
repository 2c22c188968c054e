"""`exops run` on the sample packs shows every branch; bad input is a clear error."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from app.cli.main import cli

EXAMPLES = Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json"
runner = CliRunner()


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["run", *args, "--checkpoints", str(tmp_path / "cp.sqlite")])
    return result.exit_code, result.stdout, result.stderr


def test_sample_run_shows_each_branch(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, str(EXAMPLES), "--tenant", "globex-markets", "--json")
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    assert document["tenantId"] == "globex-markets" and document["runId"].startswith("RUN-")
    results = document["results"]
    assert [r["exceptionId"] for r in results] == [f"GLX-{1000 + i}" for i in range(1, 8)]
    required = {"exceptionId", "tenantId", "exceptionType", "severity", "actionability", "selectedPlaybookId",
                "humanApprovalRequired", "resolutionStatus", "confidence", "stages", "plan"}  # fmt: skip
    assert all(required <= r.keys() for r in results)
    seen = {(r["actionability"], r["resolutionStatus"]) for r in results}
    assert ("ACTIONABLE_APPROVED_PROCESS", "RESOLVED") in seen  # automatic
    assert ("ACTIONABLE_APPROVED_PROCESS", "IN_PROGRESS") in seen  # waits on a manual step
    assert ("ACTIONABLE_APPROVED_PROCESS", "PENDING_APPROVAL") in seen  # approval
    assert ("ACTIONABLE_NON_APPROVED_PROCESS", "PENDING_APPROVAL") in seen  # not approved
    assert ("NON_ACTIONABLE_INFO_ONLY", "RESOLVED") in seen
    assert (None, "ESCALATED") in seen  # unknown type
    pending = [r for r in results if r["resolutionStatus"] == "PENDING_APPROVAL"]
    assert all(r["approvalId"].startswith("APR-GLX-") for r in pending)


def test_rerun_reports_without_processing_twice(tmp_path: Path) -> None:
    first = json.loads(run(tmp_path, str(EXAMPLES), "--tenant", "globex-markets", "--json", "--audit")[1])
    second = json.loads(run(tmp_path, str(EXAMPLES), "--tenant", "globex-markets", "--json")[1])
    assert [len(r["stages"]) for r in first["results"]] == [len(r["stages"]) for r in second["results"]]
    assert [r["resolutionStatus"] for r in first["results"]] == [
        r["resolutionStatus"] for r in second["results"]
    ]
    assert all(r["auditTrail"] for r in first["results"])  # this command's runs, from its event sink
    # the checkpoint file is the record here: a finished case keeps its last checkpoint, the rest goes
    with sqlite3.connect(tmp_path / "cp.sqlite") as connection:
        kept = dict(
            connection.execute("SELECT thread_id, COUNT(*) FROM checkpoints GROUP BY thread_id").fetchall()
        )
    finished = [r["exceptionId"] for r in first["results"] if r["pending"] is None]
    waiting = [r["exceptionId"] for r in first["results"] if r["pending"] is not None]
    assert finished and waiting
    assert all(kept[f"globex-markets:{exception_id}"] == 1 for exception_id in finished)
    assert all(kept[f"globex-markets:{exception_id}"] > 1 for exception_id in waiting)


def test_table_and_progress_without_json(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, str(EXAMPLES), "--tenant", "globex-markets")
    assert code == 0 and "Results" in err and json.loads(out)["results"]


def test_invalid_items_are_reported_and_the_rest_run(tmp_path: Path) -> None:
    items = [
        {"exceptionId": "OK-1", "exceptionType": "SETTLEMENT_DELAY_NOTICE", "rawPayload": {}},
        {"exceptionId": "BAD-1", "severity": "SEVERE", "colour": "red"},
        {"exceptionId": "BAD-2", "tenantId": "acme-capital"},
    ]
    path = tmp_path / "in.json"
    path.write_text(json.dumps(items))
    code, out, err = run(tmp_path, str(path), "--tenant", "globex-markets", "--json")
    assert code == 1 and "2 invalid exception(s) not run" in err
    results = json.loads(out)["results"]
    assert results[0]["resolutionStatus"] == "RESOLVED"
    assert results[1]["error"] == "invalid input"
    assert {p["path"] for p in results[1]["problems"]} == {"[1].severity", "[1].colour"}
    assert results[2]["problems"] == [
        {
            "path": "[2].tenantId",
            "message": "tenantId 'acme-capital' does not match --tenant 'globex-markets'",
        }
    ]


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[{"exceptionId": ')
    code, _, err = run(tmp_path, str(broken), "--tenant", "globex-markets")
    assert code == 2 and "broken.json: invalid JSON at line 1, column 18" in err
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"items": []}')
    code, _, err = run(tmp_path, str(wrong), "--tenant", "globex-markets")
    assert code == 2 and 'expected a list of exceptions or {"exceptions": [...]}' in err
    code, _, err = run(tmp_path, str(tmp_path / "missing.json"), "--tenant", "globex-markets")
    assert code == 2 and "cannot read" in err


def test_unknown_tenant(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, str(EXAMPLES), "--tenant", "nobody")
    assert code == 2 and "tenant 'nobody' has no policy pack" in err


def resume(tmp_path: Path, exception_id: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["resume", exception_id, "--tenant", "globex-markets", "--actor", "alice", *args,
                                 "--checkpoints", str(tmp_path / "cp.sqlite")])  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def test_resume_refuses_to_approve_nothing_and_takes_over(tmp_path: Path) -> None:
    """GLX-1004 (CRITICAL, no plan): approve is refused with the ways on; takeover keeps it open."""
    run(tmp_path, str(EXAMPLES), "--tenant", "globex-markets", "--json")
    code, out, err = resume(tmp_path, "GLX-1004", "--decision", "approve")
    assert code == 1 and "no plan is proposed" in err and "--decision takeover" in err
    assert json.loads(out)["resolutionStatus"] == "PENDING_APPROVAL"
    code, _, err = resume(tmp_path, "GLX-1004", "--decision", "reject")
    assert code == 2 and "needs --reason" in err
    code, out, err = resume(tmp_path, "GLX-1004", "--decision", "takeover", "--comment", "mine")
    assert code == 0, err
    taken = json.loads(out)
    assert taken["resolutionStatus"] == "IN_PROGRESS" and taken["pending"]["kind"] == "manual_step"
    code, _, err = resume(tmp_path, "GLX-1004", "--decision", "skip", "--reason", "  ")
    assert code == 2 and "needs --reason" in err
    code, out, err = resume(tmp_path, "GLX-1004", "--decision", "skip", "--reason", "DTC fixed it upstream")
    assert code == 0, err
    closed = json.loads(out)
    assert closed["resolutionStatus"] == "CLOSED_WITHOUT_ACTION"
    assert closed["outcome"]["skipped"] == [
        {"order": 1, "name": "Handle the case by hand", "by": "alice", "reason": "DTC fixed it upstream"}
    ]


def test_resume_reject_with_a_reason(tmp_path: Path) -> None:
    run(tmp_path, str(EXAMPLES), "--tenant", "globex-markets", "--json")
    code, out, err = resume(tmp_path, "GLX-1003", "--decision", "reject", "--reason", "LEI renewed")
    assert code == 0, err
    assert json.loads(out)["resolutionStatus"] == "REJECTED"
