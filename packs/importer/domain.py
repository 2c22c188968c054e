"""Rewriting domain packs written in older layouts into the current one."""

from __future__ import annotations

from typing import Any

from packs.importer.notes import Notes
from packs.importer.playbooks import convert_playbooks

_TOOL_CATEGORY_MUTATES = {"dbQueries": False, "queries": False, "lookups": False}
_EXPECTED_KEYS = {
    "exceptionType": "exceptionType",
    "severity": "severity",
    "actionability": "actionability",
    "playbookId": "playbookId",
    "selectedPlaybookId": "playbookId",
    "expectedPlaybookId": "playbookId",
    "humanApprovalRequired": "humanApprovalRequired",
    "resolutionStatus": "resolutionStatus",
}
_INPUT_KEYS = {
    "exceptionType",
    "sourceSystem",
    "severity",
    "rawPayload",
    "normalizedContext",
    "slaMinutesRemaining",
}


def _exception_types(value: Any, notes: Notes) -> Any:
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for i, item in enumerate(value):
            if isinstance(item, dict):
                item = dict(item)
                name = item.pop("exceptionType", None) or item.pop("name", None)
                out[str(name)] = item
            else:
                out[str(item)] = {"description": str(item)}
                notes.add(["exceptionTypes", i], "bare type name: description set to the name")
        notes.add(["exceptionTypes"], "list of exception types became a map keyed by type")
        value = out
    if isinstance(value, dict):
        for name, definition in value.items():
            rules = definition.get("detectionRules") if isinstance(definition, dict) else None
            if isinstance(rules, list) and any(isinstance(r, str) for r in rules):
                definition["detectionRules"] = [
                    {"description": r} if isinstance(r, str) else r for r in rules
                ]
                notes.add(
                    ["exceptionTypes", name, "detectionRules"], "text detection rules became descriptions"
                )
    return value


def _severity_rules(value: Any, notes: Notes) -> Any:
    if not isinstance(value, list):
        return value
    out = []
    for i, rule in enumerate(value):
        if isinstance(rule, dict):
            rule = dict(rule)
            if "if" in rule and "condition" not in rule:
                rule["condition"] = rule.pop("if")
                notes.add(["severityRules", i], "renamed 'if' to 'condition'")
            if "id" not in rule:
                rule["id"] = f"severity_rule_{i + 1}"
                notes.add(["severityRules", i], f"rule had no id: named it {rule['id']!r}")
        out.append(rule)
    return out


def _tools(value: Any, notes: Notes) -> Any:
    grouped = isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values())
    if not grouped:
        return value
    out: dict[str, Any] = {}
    for category, names in value.items():
        mutating = _TOOL_CATEGORY_MUTATES.get(category, True)
        for name in names:
            out[str(name)] = {
                "description": f"Imported from the '{category}' tool group; describe it and give an endpoint.",
                "parameters": {"type": "object"},
                "mutating": mutating,
            }
    notes.add(
        ["tools"],
        f"tools grouped by category became {len(out)} minimal definitions (no endpoint, any arguments): "
        "they run only as dry runs until an endpoint and a parameter schema are added",
    )
    return out


def _case_from_legacy(
    index: int, item: dict[str, Any], notes: Notes, where: list[str | int]
) -> dict[str, Any]:
    raw_input = item.get("input") or {}
    raw_expected = item.get("expectedOutput") or {}
    case_input = {k: v for k, v in raw_input.items() if k in _INPUT_KEYS}
    dropped = sorted(set(raw_input) - _INPUT_KEYS)
    expected = {_EXPECTED_KEYS[k]: v for k, v in raw_expected.items() if k in _EXPECTED_KEYS}
    dropped += sorted(f"expectedOutput.{k}" for k in set(raw_expected) - set(_EXPECTED_KEYS))
    if dropped:
        notes.add(where, f"fields not checked by test suites were dropped: {', '.join(dropped)}")
    return {
        "caseId": str(item.get("caseId") or f"case_{index + 1}"),
        "input": case_input,
        "expected": expected,
    }


def _test_suites(value: Any, notes: Notes) -> Any:
    if not isinstance(value, list) or not value:
        return value
    if all(isinstance(item, dict) and "expectedOutput" in item for item in value):
        notes.add(["testSuites"], "[{input, expectedOutput}] became one suite named 'imported'")
        cases = [_case_from_legacy(i, item, notes, ["testSuites", i]) for i, item in enumerate(value)]
        return [{"suiteId": "imported", "cases": cases}]
    out = []
    for s, suite in enumerate(value):
        if isinstance(suite, dict) and isinstance(suite.get("cases"), list):
            suite = dict(suite)
            cases = []
            for c, case in enumerate(suite["cases"]):
                if isinstance(case, dict) and ("inputExceptionType" in case or "expectedPlaybookId" in case):
                    case = {
                        "caseId": case.get("caseId", f"case_{c + 1}"),
                        "input": {"exceptionType": case.get("inputExceptionType")},
                        "expected": {"playbookId": case.get("expectedPlaybookId")},
                    }
                    notes.add(
                        ["testSuites", s, "cases", c], "inputExceptionType/expectedPlaybookId case rewritten"
                    )
                cases.append(case)
            suite["cases"] = cases
        out.append(suite)
    return out


def upgrade_domain(data: dict[str, Any], notes: Notes) -> dict[str, Any]:
    """The same domain pack in the current layout; ``notes`` records each rewrite."""
    data = dict(data)
    if "exceptionTypes" in data:
        data["exceptionTypes"] = _exception_types(data["exceptionTypes"], notes)
    if "severityRules" in data:
        data["severityRules"] = _severity_rules(data["severityRules"], notes)
    if "tools" in data:
        data["tools"] = _tools(data["tools"], notes)
    tools = set(data["tools"]) if isinstance(data.get("tools"), dict) else set()
    if "playbooks" in data:
        data["playbooks"] = convert_playbooks(data["playbooks"], tools, notes, "playbooks")
    if "testSuites" in data:
        data["testSuites"] = _test_suites(data["testSuites"], notes)
    return data
