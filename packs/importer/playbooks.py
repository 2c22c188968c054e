"""Rewriting older playbook layouts and steps into typed playbooks."""

from __future__ import annotations

import re
from typing import Any

from packs.importer.notes import Notes

_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(([^()]*)\)")
_STEP_TYPES = {"notify", "assign_owner", "set_status", "add_comment", "call_tool", "manual"}


def is_legacy_playbook(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if "exceptionType" in item or "playbookId" in item:
        return True
    steps = item.get("steps")
    return isinstance(steps, list) and any(is_legacy_step(step) for step in steps)


def is_legacy_step(step: Any) -> bool:
    return isinstance(step, str) or (isinstance(step, dict) and "type" not in step and "action" in step)


def _label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77].rstrip() + "..."


def suggested_call(sentence: str, tools: set[str]) -> dict[str, Any] | None:
    """``Call retryPaymentCapture(orderId)`` → the tool and its arguments bound to the payload field."""
    for name, args in _CALL.findall(sentence):
        if name in tools:
            names = [a.strip() for a in args.split(",") if a.strip()]
            valid = [a for a in names if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", a)]
            return {
                "tool": name,
                "arguments": {arg: "{{ exception.rawPayload." + arg + " }}" for arg in valid},
            }
    return None


def convert_step(step: Any, tools: set[str], notes: Notes, where: list[str | int]) -> Any:
    """One older step (a sentence or ``{action, parameters}``) as a typed step."""
    if isinstance(step, str):
        converted: dict[str, Any] = {"type": "manual", "name": _label(step), "instructions": step}
        call = suggested_call(step, tools)
        if call is not None:
            converted["suggestedToolCall"] = call
            notes.add(where, f"free-text step became a manual step that suggests tool {call['tool']!r}")
        else:
            notes.add(where, "free-text step became a manual step a person completes")
        return converted
    if not is_legacy_step(step):
        return step
    action = str(step["action"])
    params = step.get("parameters") or {}
    if not isinstance(params, dict):
        params = {"value": params}
    name = str(step.get("name") or step.get("description") or action)
    if action in tools:
        notes.add(where, f"step {{action: {action}}} became a call_tool step")
        return {"type": "call_tool", "name": name, "tool": action, "arguments": params}
    if action in _STEP_TYPES and action not in ("call_tool", "manual"):
        notes.add(where, f"step {{action: {action}}} became a typed {action} step")
        return {"type": action, "name": name, **params}
    notes.add(where, f"action {action!r} is not a defined tool or step type: it became a manual step")
    detail = ", ".join(f"{k}={v}" for k, v in params.items())
    return {"type": "manual", "name": name, "instructions": f"{action}({detail})" if detail else action}


def convert_playbook(
    item: Any, tools: set[str], used_ids: set[str], notes: Notes, where: list[str | int]
) -> Any:
    """One playbook in an older layout as a current one (typed steps, id, appliesTo)."""
    if not is_legacy_playbook(item):
        return item
    playbook = dict(item)
    if "playbookId" in playbook:
        playbook["id"] = playbook.pop("playbookId")
        notes.add(where, "renamed 'playbookId' to 'id'")
    if "exceptionType" in playbook:
        exception_type = playbook.pop("exceptionType")
        playbook.setdefault("appliesTo", [exception_type])
        if "id" not in playbook:
            base = f"PB_{exception_type}"
            candidate, n = base, 2
            while candidate in used_ids:
                candidate, n = f"{base}_{n}", n + 1
            playbook["id"] = candidate
            notes.add(where, f"playbook for {exception_type} had no id: named it {candidate!r}")
    if isinstance(playbook.get("appliesTo"), str):
        playbook["appliesTo"] = [playbook["appliesTo"]]
    playbook.setdefault("name", str(playbook.get("id", "imported playbook")))
    used_ids.add(str(playbook.get("id")))
    steps = playbook.get("steps")
    if isinstance(steps, list):
        playbook["steps"] = [
            convert_step(step, tools, notes, [*where, "steps", i]) for i, step in enumerate(steps)
        ]
    return playbook


def convert_playbooks(items: Any, tools: set[str], notes: Notes, key: str) -> Any:
    if not isinstance(items, list):
        return items
    used: set[str] = {str(p.get("id") or p.get("playbookId")) for p in items if isinstance(p, dict)}
    return [convert_playbook(p, tools, used, notes, [key, i]) for i, p in enumerate(items)]
