"""Rewriting tenant policy packs written in older layouts into the current one."""

from __future__ import annotations

import re
from typing import Any

from packs.domain import DomainPack
from packs.importer.notes import Notes
from packs.importer.playbooks import convert_playbooks

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_MINUTES = {"s": 1 / 60, "m": 1, "": 1, "h": 60, "d": 1440, "w": 10080}


def duration_minutes(value: Any) -> int | None:
    """``"48h"`` → 2880; a bare number is minutes; None when it cannot be read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    match = _DURATION.match(str(value))
    if match is None:
        return None
    return max(1, round(float(match.group(1)) * _MINUTES[match.group(2)]))


def _days(value: Any) -> Any:
    minutes = duration_minutes(value if not isinstance(value, int | float) else f"{value}d")
    return max(1, round(minutes / 1440)) if minutes is not None else value


def _flatten_tools(value: Any) -> Any:
    if isinstance(value, dict):
        return [name for names in value.values() if isinstance(names, list) for name in names]
    return value


def _lift_workflow_policies(data: dict[str, Any], notes: Notes) -> None:
    workflow = data.pop("workflowPolicies")
    if not isinstance(workflow, dict):
        data["workflowPolicies"] = workflow  # leave it for the schema to report
        return
    for key in ("approvedBusinessProcesses", "severityOverrides", "escalationQueue"):
        if key in workflow:
            data[key] = workflow.pop(key)
    aging = workflow.pop("agingThresholds", None)
    if isinstance(aging, dict):
        minutes = {}
        for name, value in aging.items():
            converted = duration_minutes(value)
            if converted is None:
                notes.add(["workflowPolicies", "agingThresholds", name], f"cannot read duration {value!r}")
                converted = value
            minutes[name] = converted
        data.setdefault("sla", {})["agingThresholdMinutes"] = minutes
    for key, value in workflow.items():
        data[key] = value  # anything else is checked by the schema as a top-level field
    notes.add(
        ["workflowPolicies"],
        "workflowPolicies lifted to top-level fields (agingThresholds → sla.agingThresholdMinutes)",
    )


def upgrade_tenant(data: dict[str, Any], domain: DomainPack | None, notes: Notes) -> dict[str, Any]:
    """The same tenant pack in the current layout; ``domain`` supplies the default approved list."""
    data = dict(data)
    if "workflowPolicies" in data:
        _lift_workflow_policies(data, notes)
    if "customSeverityOverrides" in data:
        items = data.pop("customSeverityOverrides") or []
        data["severityOverrides"] = {
            str(i.get("exceptionType")): i.get("severity") for i in items if isinstance(i, dict)
        }
        notes.add(["customSeverityOverrides"], "became severityOverrides {TYPE: SEVERITY}")
    if "customGuardrails" in data:
        data["guardrailOverrides"] = data.pop("customGuardrails")
        notes.add(["customGuardrails"], "renamed to guardrailOverrides")
    if "approvedTools" in data:
        data["toolsAllowList"] = _flatten_tools(data.pop("approvedTools"))
        notes.add(["approvedTools"], "renamed to toolsAllowList")
    if isinstance(data.get("toolsAllowList"), dict):
        data["toolsAllowList"] = _flatten_tools(data["toolsAllowList"])
        notes.add(["toolsAllowList"], "tools grouped by category flattened into one list")
    rules = data.get("humanApprovalRules")
    if isinstance(rules, list) and any(isinstance(r, dict) and "severity" in r for r in rules):
        data["humanApprovalRules"] = [
            {"severityIn": [r["severity"]], "requireApproval": r.get("requireApproval", True)}
            if isinstance(r, dict) and "severity" in r
            else r
            for r in rules
        ]
        notes.add(
            ["humanApprovalRules"], "{severity, requireApproval} became {severityIn: [...], requireApproval}"
        )
    retention = data.get("retentionPolicies")
    if isinstance(retention, dict) and "dataTTL" in retention:
        retention = dict(retention)
        retention["dataTTLDays"] = _days(retention.pop("dataTTL"))
        data["retentionPolicies"] = retention
        notes.add(["retentionPolicies", "dataTTL"], f"became dataTTLDays = {retention['dataTTLDays']}")
    tools = set(domain.tools) if domain is not None else set()
    if "customPlaybooks" in data:
        data["customPlaybooks"] = convert_playbooks(data["customPlaybooks"], tools, notes, "customPlaybooks")
    if "tenantName" not in data and "tenantId" in data:
        data["tenantName"] = str(data["tenantId"])
        notes.add(["tenantName"], "missing: set to the tenant id")
    if "approvedBusinessProcesses" not in data and domain is not None:
        approved = [p.id for p in domain.playbooks if p.approved]
        data["approvedBusinessProcesses"] = approved
        notes.add(
            ["approvedBusinessProcesses"],
            f"missing: every playbook of {domain.domainName} {domain.version} not flagged approved: false "
            f"counts as approved ({len(approved)}: {', '.join(approved) or 'none'}); custom playbooks are not "
            "approved until listed",
        )
    return data
