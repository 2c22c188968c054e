"""Rewriting older playbook layouts and steps into typed playbooks.

The earlier system's playbooks were ``{exceptionType, steps}`` (or ``{playbookId, approved,
appliesTo, steps, successCriteria}``) and a step was a sentence or ``{action, parameters}``, where
the action could be a tool name, ``invokeTool('x')``, ``callTool`` with ``parameters.tool``, or a
sentence that mentions a tool call (``Retry allocations using repairAllocation(orderId)``).
Sentences become manual steps a person completes; when a sentence names one defined tool, the
call is kept as the step's ``suggestedToolCall`` with its arguments bound to the exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packs.importer.notes import Notes, Where

_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(([^()]*)\)")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARG = re.compile(r"""\s*('[^']*'|"[^"]*"|[^,]+?)\s*(?:,|$)""")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_WRAPPED_TOOL = re.compile(
    r"^\s*(?:invokeTool|callTool|useTool|invoke|call_tool|call)\s*\(\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?\s*\)\s*$",
    re.IGNORECASE,
)
_CALL_ACTIONS = {"calltool", "invoketool", "usetool", "call_tool", "invoke_tool", "tool", "invoke"}
_TOOL_KEYS = ("tool", "toolName", "tool_name", "toolId", "tool_id")
_ARG_KEYS = ("arguments", "args", "payload", "parameters", "params")
_STEP_TYPES = {"notify", "assign_owner", "set_status", "add_comment", "call_tool", "manual"}
_LEGACY_STEP_KEYS = {"action", "parameters", "stepId", "description", "name", "conditional", "fallback"}

# Placeholders of the earlier system and of its guides, rewritten to ``{{ exception.… }}``.
_DOLLAR = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}")
_DOUBLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
_SINGLE = re.compile(r"(?<![{$])\{(exception\.[A-Za-z0-9_.]+)\}(?!\})")
_CONTEXTS = {"exception", "domain", "tenant", "failedStep"}
_RECORD_FIELDS = {
    "exception_id": "exceptionId",
    "tenant_id": "tenantId",
    "source_system": "sourceSystem",
    "exception_type": "exceptionType",
    "raw_payload": "rawPayload",
    "normalized_context": "normalizedContext",
    "resolution_status": "resolutionStatus",
    "detected_rules": "detectedRules",
    "suggested_actions": "suggestedActions",
}
_CURRENT_FIELDS = {
    "exceptionId",
    "tenantId",
    "sourceSystem",
    "exceptionType",
    "severity",
    "timestamp",
    "rawPayload",
    "normalizedContext",
    "resolutionStatus",
}


@dataclass(frozen=True)
class ToolIndex:
    """The tools a playbook may call, with the order of their declared parameters."""

    params: Mapping[str, tuple[str, ...]]
    required: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, tools: Any) -> ToolIndex:
        params: dict[str, tuple[str, ...]] = {}
        required: dict[str, tuple[str, ...]] = {}
        if isinstance(tools, Mapping):
            for name, definition in tools.items():
                schema = definition.get("parameters") if isinstance(definition, Mapping) else None
                props = schema.get("properties") if isinstance(schema, Mapping) else None
                params[str(name)] = tuple(props) if isinstance(props, Mapping) else ()
                needed = schema.get("required") if isinstance(schema, Mapping) else None
                required[str(name)] = tuple(str(r) for r in needed) if isinstance(needed, list) else ()
        return cls(params, required)

    def resolve(self, name: str) -> tuple[str | None, bool]:
        """The defined tool ``name`` means, and whether only a case-insensitive match found it."""
        if name in self.params:
            return name, False
        folded = [tool for tool in self.params if tool.lower() == name.lower()]
        return (folded[0], True) if len(folded) == 1 else (None, False)


def payload_placeholder(field: str) -> str:
    return "{{ exception.rawPayload." + field + " }}"


def _modern(path: str) -> str | None:
    """An old placeholder path as a current one; None when it is already current."""
    parts = path.split(".")
    head = parts[0]
    if head == "exception" and len(parts) > 1:
        field = _RECORD_FIELDS.get(parts[1], parts[1])
        if field not in _CURRENT_FIELDS:
            modern = "exception.rawPayload." + ".".join(parts[1:])
        else:
            modern = ".".join(["exception", field, *parts[2:]])
        return None if modern == path else modern
    if head in _CONTEXTS:
        return None
    if head in _RECORD_FIELDS or head in _CURRENT_FIELDS:
        return ".".join(["exception", _RECORD_FIELDS.get(head, head), *parts[1:]])
    return "exception.rawPayload." + path


def rewrite_placeholders(value: Any, notes: Notes, where: Where) -> Any:
    """``{{paymentId}}``, ``${exception.normalizedContext.x}``, ``{exception.raw_payload.x}`` →
    ``{{ exception.… }}``, the syntax exops renders; each rewrite is noted."""
    if isinstance(value, dict):
        return {k: rewrite_placeholders(v, notes, [*where, k]) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite_placeholders(v, notes, [*where, i]) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    changes: list[str] = []
    bare: list[bool] = []

    def rewrite(match: re.Match[str], *, always: bool) -> str:
        path = match.group(1)
        modern = _modern(path)
        if modern is None and not always:
            return match.group(0)
        new = "{{ " + (modern or path) + " }}"
        changes.append(f"{match.group(0)} → {new}")
        bare.append("." not in path)
        return new

    text = _DOLLAR.sub(lambda m: rewrite(m, always=True), value)
    text = _SINGLE.sub(lambda m: rewrite(m, always=True), text)
    text = _DOUBLE.sub(lambda m: rewrite(m, always=False), text)
    if changes:
        hint = " (a bare name is read as a field of the exception's rawPayload)" if any(bare) else ""
        notes.add(where, "placeholder rewritten: " + "; ".join(changes) + hint)
    return text


def _label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77].rstrip() + "..."


def _argument(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if _NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    if _IDENT.fullmatch(text):
        return payload_placeholder(text)
    return None


def _bind(tool: str, raw_args: str, tools: ToolIndex) -> tuple[dict[str, Any], list[str]]:
    """Arguments of ``tool(a, 'b')``: by position onto the tool's declared parameters when it has
    enough of them, else by the argument names; returns the arguments and how each was bound."""
    items = [m.group(1) for m in _ARG.finditer(raw_args) if m.group(1).strip()]
    declared = tools.params.get(tool, ())
    bound: dict[str, Any] = {}
    how: list[str] = []
    positional = bool(declared) and len(items) <= len(declared)
    for index, item in enumerate(items):
        value = _argument(item)
        if value is None:
            how.append(f"argument {item!r} not understood: left out")
            continue
        if positional:
            key = declared[index]
        elif _IDENT.fullmatch(item.strip()):
            key = item.strip()
        else:
            how.append(f"argument {item.strip()} has no parameter name: left out")
            continue
        bound[key] = value
        source = f"rawPayload.{item.strip()}" if isinstance(value, str) and "{{" in value else repr(value)
        how.append(f"{key} = {source}")
    return bound, how


def suggested_call(sentence: str, tools: ToolIndex) -> tuple[dict[str, Any], str] | None:
    """The tool call a sentence describes, and what was read into it.

    ``Retry using repairAllocation(orderId)`` → repairAllocation with orderId from the payload;
    ``OpenCase('CODING_REVIEW')`` → openCase (matched ignoring case) with its first parameter set
    to the literal; a sentence naming exactly one tool without arguments gets that tool's required
    parameters from the payload."""
    for name, raw_args in _CALL.findall(sentence):
        tool, folded = tools.resolve(name)
        if tool is None:
            continue
        arguments, how = _bind(tool, raw_args, tools)
        said = f"tool {tool!r}" + (f" (written {name!r})" if folded else "")
        detail = f" with {', '.join(how)}" if how else ""
        return {"tool": tool, "arguments": arguments}, said + detail
    named = sorted({w for w in _WORD.findall(sentence) if w in tools.params})
    if len(named) == 1:
        tool = named[0]
        required = tools.required.get(tool, ())
        arguments = {p: payload_placeholder(p) for p in required}
        detail = f" with {', '.join(f'{p} = rawPayload.{p}' for p in required)}" if required else ""
        return {"tool": tool, "arguments": arguments}, f"tool {tool!r} (named without arguments){detail}"
    return None


def _manual(
    text: str, name: str, tools: ToolIndex, notes: Notes, where: Where, plain: list[int] | None
) -> dict[str, Any]:
    step: dict[str, Any] = {"type": "manual", "name": _label(name), "instructions": text}
    found = suggested_call(text, tools)
    if found is not None:
        step["suggestedToolCall"], said = found
        notes.add(where, f"free-text step became a manual step a person completes; it suggests {said}")
        return step
    named = sorted({w for w in _WORD.findall(text) if w in tools.params})
    if len(named) > 1:
        notes.add(
            where,
            "free-text step became a manual step a person completes (it names several tools: "
            f"{', '.join(named)}; none is suggested)",
        )
    elif plain is not None and isinstance(where[-1], int):
        plain.append(where[-1])  # noted once for the playbook
    else:
        notes.add(where, "free-text step became a manual step a person completes")
    return step


def _tool_of(action: str, params: dict[str, Any], tools: ToolIndex) -> tuple[str, str, dict[str, Any]] | None:
    """(tool as written, how it was named, arguments) when the step is an explicit tool call."""
    wrapped = _WRAPPED_TOOL.match(action)
    if wrapped:
        return wrapped.group(1), f"{action!r}", params
    if action.lower() in _CALL_ACTIONS:
        for key in _TOOL_KEYS:
            if isinstance(params.get(key), str):
                rest = {k: v for k, v in params.items() if k != key}
                if (
                    len(rest) == 1
                    and next(iter(rest)) in _ARG_KEYS
                    and isinstance(next(iter(rest.values())), dict)
                ):
                    rest = next(iter(rest.values()))
                return params[key], f"{{action: {action}, parameters.{key}: {params[key]}}}", rest
        return None
    if _IDENT.fullmatch(action) and action not in _STEP_TYPES:
        tool, _ = tools.resolve(action)
        if tool is not None:
            return action, f"{{action: {action}}}", params
    return None


def convert_step(
    step: Any, tools: ToolIndex, notes: Notes, where: list[str | int], plain: list[int] | None = None
) -> Any:
    """One older step (a sentence or ``{action, parameters}``) as a typed step; ``plain`` collects
    the positions of sentences that became manual steps with nothing more to say about them."""
    if isinstance(step, str):
        return _manual(step, step, tools, notes, where, plain)
    if not (isinstance(step, dict) and "type" not in step and "action" in step):
        return step
    action = str(step["action"]).strip()
    params = step.get("parameters")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        params = {"value": params}
    rest = {k: v for k, v in step.items() if k not in _LEGACY_STEP_KEYS}  # left for the schema to report
    name = str(step.get("name") or step.get("description") or step.get("stepId") or _label(action))
    if step.get("stepId") is not None:
        notes.add(where, f"stepId {step['stepId']!r} dropped: steps run in the order they are listed")
    conditional = step.get("conditional")
    fallback = step.get("fallback")
    call = _tool_of(action, params, tools)
    converted: dict[str, Any]
    if call is not None:
        written, how, arguments = call
        tool, folded = tools.resolve(written)
        if folded:
            notes.add(where, f"tool {written!r} matched to the defined tool {tool!r} (different case)")
        tool = tool or written
        if conditional:
            converted = {
                "type": "manual",
                "name": name,
                "instructions": f"If {conditional}: call {tool}",
                "suggestedToolCall": {"tool": tool, "arguments": arguments},
            }
            notes.add(
                where,
                f"step {how} runs only if {conditional!r}: exops steps have no conditions, so it became a "
                f"manual step where a person checks the condition (the call to {tool} is suggested)",
            )
        else:
            converted = {"type": "call_tool", "name": name, "tool": tool, "arguments": arguments}
            notes.add(where, f"step {how} became a call_tool step calling {tool}")
        notes.moved_many(
            [([*where, "tool"], [*where, "action"]), ([*where, "arguments"], [*where, "parameters"])]
        )
    elif action in _STEP_TYPES and action not in ("call_tool", "manual"):
        converted = {"type": action, "name": name, **params}
        notes.add(where, f"step {{action: {action}}} became a typed {action} step")
        notes.moved_many([([*where, key], [*where, "parameters", key]) for key in params])
    else:
        text = action
        if params:
            detail = ", ".join(f"{k}={v}" for k, v in params.items())
            text += f"({detail})" if _IDENT.fullmatch(action) else f" ({detail})"
        if conditional:
            text = f"If {conditional}: {text}"
        converted = _manual(text, name, tools, notes, where, None if (params or conditional) else plain)
        if params and not _CALL.search(action):
            notes.add(where, "its parameters are kept in the instructions")
        if conditional:
            notes.add(where, f"its condition {conditional!r} is in the instructions: a person checks it")
        notes.moved([*where, "instructions"], [*where, "action"], whole=True)
    if step.get("description") and step.get("name"):
        converted["description"] = str(step["description"])
    if fallback:
        if converted["type"] == "manual":
            converted["instructions"] += f" If that fails: {fallback}"
        else:
            converted["description"] = (
                converted.get("description", "") + f" If this fails: {fallback}"
            ).strip()
        notes.add(
            where,
            f"fallback {fallback!r} kept as text: exops does not run step fallbacks (a failed step calls "
            "the playbook's rollbackTool, then escalates)",
        )
    converted.update(rest)
    return converted


def _rewrite_step_text(step: Any, notes: Notes, where: Where) -> Any:
    if not isinstance(step, dict):
        return step
    out = dict(step)
    for key in ("arguments", "message", "text", "instructions", "group", "owner"):
        if key in out:
            out[key] = rewrite_placeholders(out[key], notes, [*where, key])
    call = out.get("suggestedToolCall")
    if isinstance(call, dict) and "arguments" in call:
        out["suggestedToolCall"] = {
            **call,
            "arguments": rewrite_placeholders(
                call["arguments"], notes, [*where, "suggestedToolCall", "arguments"]
            ),
        }
    return out


def convert_playbook(
    item: Any, tools: ToolIndex, used_ids: set[str], notes: Notes, where: list[str | int]
) -> Any:
    """One playbook in an older layout as a current one (typed steps, id, appliesTo)."""
    if not isinstance(item, dict):
        return item
    playbook = dict(item)
    steps = playbook.get("steps")
    legacy = (
        "exceptionType" in playbook
        or "playbookId" in playbook
        or (
            isinstance(steps, list)
            and any(isinstance(s, str) or (isinstance(s, dict) and "type" not in s) for s in steps)
        )
    )
    if "playbookId" in playbook and "id" not in playbook:
        playbook["id"] = playbook.pop("playbookId")
        notes.add(where, "renamed 'playbookId' to 'id'")
        notes.moved([*where, "id"], [*where, "playbookId"])
    if "exceptionType" in playbook:
        exception_type = playbook.pop("exceptionType")
        if "appliesTo" not in playbook:
            playbook["appliesTo"] = [exception_type]
            notes.moved([*where, "appliesTo"], [*where, "exceptionType"], whole=True)
        if "id" not in playbook:
            base = f"PB_{exception_type}"
            candidate, n = base, 2
            while candidate in used_ids:
                candidate, n = f"{base}_{n}", n + 1
            playbook["id"] = candidate
            also = ""
            if "name" not in playbook:
                playbook["name"], also = candidate, " or name"
            notes.add(where, f"playbook for {exception_type} had no id{also}: named it {candidate!r}")
            notes.moved([*where, "id"], [*where, "exceptionType"], whole=True)
    if isinstance(playbook.get("appliesTo"), str):
        playbook["appliesTo"] = [playbook["appliesTo"]]
        notes.add([*where, "appliesTo"], "a single type became a list")
    if isinstance(playbook.get("version"), int | float) and not isinstance(playbook.get("version"), bool):
        playbook["version"] = str(playbook["version"])
        notes.add(
            [*where, "version"], f"number {item['version']} written as the text {playbook['version']!r}"
        )
    if legacy and "name" not in playbook and "id" in playbook:
        playbook["name"] = str(playbook["id"])
        notes.add(where, f"playbook had no name: named it {playbook['name']!r}")
    used_ids.add(str(playbook.get("id")))
    if isinstance(steps, list):
        plain: list[int] = []
        playbook["steps"] = [
            _rewrite_step_text(
                convert_step(step, tools, notes, [*where, "steps", i], plain), notes, [*where, "steps", i]
            )
            for i, step in enumerate(steps)
        ]
        if plain:
            which = (
                "every step" if len(plain) == len(steps) else "steps " + ", ".join(f"[{i}]" for i in plain)
            )
            notes.add(
                [*where, "steps"],
                f"{which} (free text naming no tool) became manual steps a person completes",
            )
    for key in ("rollbackArguments",):
        if key in playbook:
            playbook[key] = rewrite_placeholders(playbook[key], notes, [*where, key])
    return playbook


def convert_playbooks(items: Any, tools: ToolIndex, notes: Notes, key: str) -> Any:
    if not isinstance(items, list):
        return items
    used: set[str] = {str(p.get("id") or p.get("playbookId")) for p in items if isinstance(p, dict)}
    return [convert_playbook(p, tools, used, notes, [key, i]) for i, p in enumerate(items)]
