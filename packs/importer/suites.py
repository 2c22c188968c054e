"""Test suites written for the earlier system, with the expectations its test runner checked.

That runner read ``expectedOutput`` keys ``expectedPlaybookId``, ``expectedExceptionType``,
``expectedSeverity`` and ``expectedStages`` (``{stage: {decision: "…"}}``, compared with the text
its agents produced), and any other key as a field of its pipeline's output. Each is kept as the
expectation exops checks for the same thing; the stage texts are read back into the decisions they
stated (``"Triaged X HIGH"`` is a type and a severity, ``"Approved"`` an approved process without
human approval). An expectation nobody could read is a problem, never silently dropped.
"""

from __future__ import annotations

import re
from typing import Any

from packs.importer.notes import Notes, Where
from packs.importer.values import identifier, severity

_EXPECTED = {
    "exceptionType": "exceptionType",
    "expectedExceptionType": "exceptionType",
    "expected_exception_type": "exceptionType",
    "exception.exception_type": "exceptionType",
    "exception.exceptionType": "exceptionType",
    "severity": "severity",
    "expectedSeverity": "severity",
    "expected_severity": "severity",
    "exception.severity": "severity",
    "actionability": "actionability",
    "expectedActionability": "actionability",
    "playbookId": "playbookId",
    "selectedPlaybookId": "playbookId",
    "expectedPlaybookId": "playbookId",
    "expected_playbook_id": "playbookId",
    "humanApprovalRequired": "humanApprovalRequired",
    "expectedHumanApprovalRequired": "humanApprovalRequired",
    "resolutionStatus": "resolutionStatus",
    "expectedResolutionStatus": "resolutionStatus",
}
_STAGES = ("expectedStages", "expected_stages")
_REMARKS = ("notes", "note", "comment", "comments", "description")
_INPUT_KEYS = {
    "exceptionType",
    "sourceSystem",
    "severity",
    "rawPayload",
    "normalizedContext",
    "slaMinutesRemaining",
}
_STAGE_TEXTS = {
    "intake": "'Normalized', 'Normalized as TYPE'",
    "triage": "'Triaged TYPE SEVERITY'",
    "policy": "'Approved', 'Approved - Human approval required', 'Blocked - Non-actionable', "
    "'Blocked - Playbook not approved', 'Escalate'",
    "resolution": "'Resolved plan created with N actions', 'Draft playbook suggested (not approved)', "
    "'No resolution plan available'",
    "feedback": "'FEEDBACK_CAPTURED'",
}
_POLICY: dict[str, dict[str, Any]] = {
    "approved": {"actionability": "ACTIONABLE_APPROVED_PROCESS", "humanApprovalRequired": False},
    "approved - human approval required": {
        "actionability": "ACTIONABLE_APPROVED_PROCESS",
        "humanApprovalRequired": True,
    },
    "blocked - non-actionable": {"actionability": "NON_ACTIONABLE_INFO_ONLY"},
    "blocked - playbook not approved": {"actionability": "ACTIONABLE_NON_APPROVED_PROCESS"},
    "escalate": {"resolutionStatus": "ESCALATED"},
}


def _stage(stage: str, decision: str) -> tuple[dict[str, Any], str] | None:
    """What an old stage decision text states, as exops expectations, and a remark; None if unknown."""
    text = " ".join(decision.split())
    name = stage.lower()
    if name == "intake":
        match = re.fullmatch(r"Normalized(?: as (\S+))?", text, re.IGNORECASE)
        if match is None:
            return None
        if match.group(1):
            return {"exceptionType": match.group(1)}, ""
        return {}, "every case exops accepts is normalized: nothing further to check"
    if name == "triage":
        match = re.fullmatch(r"Triaged (\S+) (LOW|MEDIUM|HIGH|CRITICAL)", text, re.IGNORECASE)
        if match is None:
            return None
        return {"exceptionType": match.group(1), "severity": match.group(2).upper()}, ""
    if name == "policy":
        found = _POLICY.get(text.lower())
        return (dict(found), "") if found is not None else None
    if name == "resolution":
        if text.lower() == "no resolution plan available":
            return {"playbookId": None}, "read as: no approved playbook is selected"
        if text.lower() == "draft playbook suggested (not approved)":
            return {"actionability": "ACTIONABLE_NON_APPROVED_PROCESS"}, ""
        match = re.fullmatch(r"Resolved plan created with (\d+) actions?", text, re.IGNORECASE)
        if match is not None:
            return (
                {"actionability": "ACTIONABLE_APPROVED_PROCESS"},
                f"the number of actions ({match.group(1)}) is not checked",
            )
        return None
    if name == "feedback":
        if text.upper() == "FEEDBACK_CAPTURED":
            return {}, "every finished case records feedback: nothing further to check"
        return None
    return None


def _merge(expected: dict[str, Any], field: str, value: Any, notes: Notes, where: Where, said: str) -> None:
    if field in expected and expected[field] != value:
        notes.problem(
            where, f"{said} expects {field} {value!r}, but the case also expects {expected[field]!r}"
        )
        return
    expected[field] = value


def _expectations(raw: Any, notes: Notes, where: list[str | int]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        notes.problem(where, "expected an object of expectations, e.g. {expectedSeverity: HIGH}")
        return {}
    expected: dict[str, Any] = {}
    for key, value in raw.items():
        at = [*where, key]
        if key in _EXPECTED:
            field = _EXPECTED[key]
            if field == "severity":
                value = severity(value, notes, at)
            if key != field:
                notes.add(at, f"checked as expected.{field}")
            _merge(expected, field, value, notes, at, key)
        elif key in _STAGES:
            if not isinstance(value, dict):
                notes.problem(at, "expected {stage: {decision: '…'}}")
                continue
            for stage, spec in value.items():
                decision = spec.get("decision") if isinstance(spec, dict) else spec
                stage_at = [*at, stage, "decision"] if isinstance(spec, dict) else [*at, stage]
                read = _stage(str(stage), decision) if isinstance(decision, str) else None
                if read is None:
                    known = _STAGE_TEXTS.get(str(stage).lower())
                    hint = (
                        f"the earlier system's {stage} decisions read: {known}"
                        if known
                        else f"stages are {', '.join(_STAGE_TEXTS)}"
                    )
                    notes.problem(
                        stage_at,
                        f"cannot tell what {decision!r} checks ({hint}); write the expectation as "
                        "expectedSeverity, expectedExceptionType, expectedPlaybookId, actionability, "
                        "humanApprovalRequired or resolutionStatus",
                    )
                    continue
                fields, remark = read
                for field, field_value in fields.items():
                    _merge(expected, field, field_value, notes, stage_at, f"{stage} decision {decision!r}")
                checks = ", ".join(f"{k} {v!r}" for k, v in fields.items())
                notes.add(
                    stage_at,
                    f"{stage} decision {decision!r} checked as {checks}"
                    if checks
                    else f"{stage} decision {decision!r}: {remark}",
                )
                if checks and remark:
                    notes.add(stage_at, remark)
        elif key.startswith("stages.") and key.endswith(".decision"):
            stage = key.split(".")[1]
            read = _stage(stage, value) if isinstance(value, str) else None
            if read is None:
                notes.problem(at, f"cannot tell what {value!r} checks; write the expectation as a field")
                continue
            for field, field_value in read[0].items():
                _merge(expected, field, field_value, notes, at, key)
            notes.add(at, f"checked as {', '.join(f'{k} {v!r}' for k, v in read[0].items()) or 'nothing'}")
        else:
            notes.problem(
                at,
                f"cannot check {key!r}: expectations are expectedSeverity, expectedExceptionType, "
                "expectedPlaybookId, expectedStages, actionability, humanApprovalRequired, resolutionStatus",
            )
    return expected


def _legacy_case(
    index: int, item: dict[str, Any], domain: str, notes: Notes, where: list[str | int]
) -> dict[str, Any]:
    raw_input = item.get("input") or {}
    if not isinstance(raw_input, dict):
        notes.problem([*where, "input"], "expected an object: the exception to run")
        raw_input = {}
    case: dict[str, Any] = {}
    case_id = item.get("caseId")
    if case_id is None and isinstance(raw_input.get("exceptionId"), str):
        case_id = identifier(raw_input["exceptionId"], "case")
        notes.add([*where, "input", "exceptionId"], f"became the case id {case_id!r}")
    case["caseId"] = str(case_id or f"case_{index + 1}")
    if item.get("description"):
        case["description"] = item["description"]
    case_input = {k: v for k, v in raw_input.items() if k in _INPUT_KEYS}
    if "severity" in case_input:
        case_input["severity"] = severity(case_input["severity"], notes, [*where, "input", "severity"])
    tenant = raw_input.get("tenantId") or item.get("tenantId")
    if tenant is not None:
        case["tenantId"] = tenant
        notes.add([*where, "input", "tenantId"], f"kept: the case runs under tenant {tenant}'s policy")
    named = raw_input.get("domainName")
    if named is not None and named != domain:
        notes.problem(
            [*where, "input", "domainName"], f"names domain {named!r}; this pack is {domain!r}: move the case"
        )
    elif named is not None:
        notes.add([*where, "input", "domainName"], "dropped: the case runs in this pack's domain")
    handled = _INPUT_KEYS | {"tenantId", "domainName", "exceptionId"}
    dropped = sorted(set(raw_input) - handled)
    if "exceptionId" in raw_input and item.get("caseId") is not None:
        dropped.append("exceptionId")
    if dropped:
        notes.add(
            [*where, "input"], f"not part of a test case's input, dropped: {', '.join(sorted(dropped))}"
        )
    case["input"] = case_input
    raw_expected = item.get("expectedOutput") or {}
    if isinstance(raw_expected, dict):
        remarks = {k: raw_expected[k] for k in _REMARKS if k in raw_expected}
        for key, text in remarks.items():
            case["description"] = (str(case.get("description", "")) + " " + str(text)).strip()
            notes.add(
                [*where, "expectedOutput", key], "a remark, not an expectation: kept as the case description"
            )
        raw_expected = {k: v for k, v in raw_expected.items() if k not in _REMARKS}
    case["expected"] = _expectations(raw_expected, notes, [*where, "expectedOutput"])
    return case


def upgrade_test_suites(value: Any, domain: str, notes: Notes) -> Any:
    """Older test suites as current ones: ``[{input, expectedOutput}]`` becomes one suite."""
    if not isinstance(value, list) or not value:
        return value
    if all(
        isinstance(item, dict) and ("expectedOutput" in item or "input" in item) and "cases" not in item
        for item in value
    ):
        notes.add(
            ["testSuites"],
            f"[{{input, expectedOutput}}] became one suite 'imported' with {len(value)} case(s)",
        )
        cases = [_legacy_case(i, item, domain, notes, ["testSuites", i]) for i, item in enumerate(value)]
        moves: list[tuple[Where, Where]] = []
        for i in range(len(value)):
            moves += [
                (["testSuites", 0, "cases", i, "expected"], ["testSuites", i, "expectedOutput"]),
                (["testSuites", 0, "cases", i], ["testSuites", i]),
            ]
        notes.moved_many(moves)
        return [{"suiteId": "imported", "cases": cases}]
    out = []
    for s, suite in enumerate(value):
        if isinstance(suite, dict) and isinstance(suite.get("cases"), list):
            suite = dict(suite)
            cases = []
            for c, case in enumerate(suite["cases"]):
                where: list[str | int] = ["testSuites", s, "cases", c]
                if isinstance(case, dict) and ("inputExceptionType" in case or "expectedPlaybookId" in case):
                    converted: dict[str, Any] = {"caseId": case.get("caseId", f"case_{c + 1}")}
                    if case.get("tenantId"):
                        converted["tenantId"] = case["tenantId"]
                    converted["input"] = {"exceptionType": case.get("inputExceptionType")}
                    converted["expected"] = {"playbookId": case.get("expectedPlaybookId")}
                    notes.add(where, "{inputExceptionType, expectedPlaybookId} became {input, expected}")
                    notes.moved_many(
                        [
                            ([*where, "input", "exceptionType"], [*where, "inputExceptionType"]),
                            ([*where, "expected", "playbookId"], [*where, "expectedPlaybookId"]),
                        ]
                    )
                    case = converted
                elif isinstance(case, dict) and "expectedOutput" in case and "expected" not in case:
                    case = _legacy_case(c, case, domain, notes, where)
                    notes.moved([*where, "expected"], [*where, "expectedOutput"])
                cases.append(case)
            suite["cases"] = cases
        out.append(suite)
    return out
