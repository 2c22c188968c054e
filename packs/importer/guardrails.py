"""Guardrails written for the earlier system (domain ``guardrails`` and tenant ``customGuardrails``)."""

from __future__ import annotations

from typing import Any

from packs.importer.notes import Notes, Where
from packs.importer.values import severities
from packs.playbook import SAFE_STEP_TYPES

_ACTIONS = SAFE_STEP_TYPES | {"call_tool", "manual"}


def _name_list(key: str, items: list[Any], notes: Notes, where: list[str | int]) -> dict[str, Any]:
    tools = [x for x in items if x not in _ACTIONS]
    actions = [x for x in items if x in _ACTIONS]
    out: dict[str, Any] = {"tools": tools}
    if actions:
        out["actions"] = actions
    moves: list[tuple[Where, Where]] = []
    for index, item in enumerate(items):
        part, position = ("actions", actions.index(item)) if item in actions else ("tools", tools.index(item))
        moves.append(([*where, key, part, position], [*where, key, index]))
    notes.moved_many(moves)
    if not items:
        meaning = "no tool or action is restricted" if key == "allowLists" else "nothing is blocked"
        notes.add([*where, key], f"an empty list became {{tools: []}}: {meaning}")
    elif key == "allowLists":
        notes.add(
            [*where, key],
            "a plain list became {tools: [...]" + (", actions: [...]" if actions else "") + "}: exops "
            "enforces it, so only these run without a person (the earlier system did not check this list)",
        )
    else:
        notes.add(
            [*where, key],
            "a plain list became {tools: [...]" + (", actions: [...]" if actions else "") + "}: these never "
            "run without a person",
        )
    return out


def upgrade_guardrails(value: Any, notes: Notes, where: list[str | int]) -> Any:
    """The same guardrails in the current layout (plain allow/block lists, lower-case severities,
    ``severityGates.{S}.requireApproval``)."""
    if not isinstance(value, dict):
        return value
    rails = dict(value)
    for key in ("allowLists", "blockLists"):
        if isinstance(rails.get(key), list):
            rails[key] = _name_list(key, rails[key], notes, where)
    if "noAutoActionIfSeverityIn" in rails:
        rails["noAutoActionIfSeverityIn"] = severities(
            rails["noAutoActionIfSeverityIn"], notes, [*where, "noAutoActionIfSeverityIn"]
        )
    gates = rails.get("severityGates")
    if isinstance(gates, dict):
        new_gates: dict[Any, Any] = {}
        for level, gate in gates.items():
            key = level.upper() if isinstance(level, str) else level
            if key != level:
                notes.add([*where, "severityGates", level], f"severity {level!r} read as {key}")
                notes.moved([*where, "severityGates", key], [*where, "severityGates", level])
            if isinstance(gate, dict) and "requireApproval" in gate and "humanApprovalRequired" not in gate:
                gate = {
                    ("humanApprovalRequired" if k == "requireApproval" else k): v for k, v in gate.items()
                }
                notes.add(
                    [*where, "severityGates", key, "requireApproval"], "renamed to humanApprovalRequired"
                )
                notes.moved(
                    [*where, "severityGates", key, "humanApprovalRequired"],
                    [*where, "severityGates", key, "requireApproval"],
                )
            new_gates[key] = gate
        rails["severityGates"] = new_gates
    return rails
