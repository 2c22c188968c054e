"""Rewriting domain packs written for the earlier system into the current layout.

Handles every shape that system's own models, loaders and guides accept, and the shapes found in
its users' files: no version (or ``v1.0``), ``ontology.concepts``, entities given as ``keys`` /
``fields`` or with bare-type attributes and string or ``{toEntity, type}`` relations, exception
types with ``name``, ``defaultSeverity`` / ``severity``, ``tags`` and their own ``severityRules``,
severity rules keyed ``if``, tools grouped by category (names or ``{name, description, argsSchema,
returns}`` objects), tool parameters as ``{field: {type, required}}``, tool ``version`` /
``maxRetries`` / ``auth: {type}``, older playbooks and steps, plain allow/block lists, and test
suites as ``[{input, expectedOutput}]`` with the keys that system's test runner checked.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from packs.conditions import CASE_FIELDS, ConditionError, check_condition
from packs.importer.guardrails import upgrade_guardrails
from packs.importer.notes import Notes, Where
from packs.importer.playbooks import ToolIndex, convert_playbooks
from packs.importer.suites import upgrade_test_suites
from packs.importer.values import TYPE_WORDS, attribute_type, json_schema_for, secret_name, severity, unique

VERSION = re.compile(r"^\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?$")
_FILE_VERSION = re.compile(r"^[vV]?(\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?)$")
_TOOL_CATEGORY_MUTATES = {"dbQueries": False, "queries": False, "lookups": False, "reads": False}
_SCHEMA_KEYWORDS = {"properties", "$schema", "$ref", "$defs", "anyOf", "oneOf", "allOf", "items"}
_AUTH_KINDS = {
    "none": "none",
    "apikey": "api_key",
    "api_key": "api_key",
    "api-key": "api_key",
    "bearer": "bearer",
    "token": "bearer",
    "oauth": "bearer",
    "oauth2": "bearer",
    "basic": "basic",
}
_AUTH_VALUES = ("key", "apiKey", "api_key", "token", "password", "secret", "value", "username", "user")


def _version(data: dict[str, Any], notes: Notes, source: str) -> None:
    value = data.get("version")
    if value is None:
        name = PurePath(source).name
        match = _FILE_VERSION.match(PurePath(source).stem)
        if match:
            data["version"] = match.group(1)
            notes.add(["version"], f"missing: took {data['version']} from the file name {name}")
        else:
            data["version"] = "1.0.0"
            notes.add(["version"], f"missing, and the file name {name} is not a version: set to 1.0.0")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value) if isinstance(value, float) else f"{value}.0"
        data["version"] = text
        notes.add(["version"], f"the number {value} written as the version {text!r}")
    elif isinstance(value, str) and not VERSION.match(value):
        match = _FILE_VERSION.match(value.strip())
        if match:
            data["version"] = match.group(1)
            notes.add(["version"], f"{value!r} read as {data['version']!r}")


def _ontology(value: Any, notes: Notes) -> Any:
    if isinstance(value, dict) and set(value) == {"concepts"} and isinstance(value["concepts"], dict):
        notes.add(
            ["ontology", "concepts"], "ontology.concepts lifted: each concept is keyed by name under ontology"
        )
        notes.moved(["ontology"], ["ontology", "concepts"])
        return value["concepts"]
    return value


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _attribute(spec: Any, notes: Notes, where: list[str | int]) -> Any:
    if isinstance(spec, str):
        kind = attribute_type(spec)
        if kind is None:
            notes.problem(where, f"type {spec!r} is not understood: write one of {TYPE_WORDS}")
            return {"type": "string"}
        notes.add(where, f"bare type {spec!r} became {{type: {kind}}}")
        return {"type": kind}
    if isinstance(spec, dict) and isinstance(spec.get("type"), str):
        kind = attribute_type(spec["type"])
        if kind is not None and kind != spec["type"]:
            notes.add([*where, "type"], f"type {spec['type']!r} read as {kind!r}")
            return {**spec, "type": kind}
    return spec


def _relation(item: Any, notes: Notes, where: list[str | int]) -> Any:
    if isinstance(item, str):
        notes.add(where, f"relation {item!r} became {{name: {_lower_first(item)}, target: {item}}}")
        return {"name": _lower_first(item), "target": item}
    if isinstance(item, dict) and "toEntity" in item and "target" not in item:
        rest = {k: v for k, v in item.items() if k not in ("toEntity", "type")}
        target = item["toEntity"]
        kind = str(item.get("type") or "")
        many = re.sub(r"[^a-z]", "", kind.lower()).endswith("many")
        out = {"name": rest.pop("name", None) or _lower_first(str(target)), "target": target, **rest}
        out["cardinality"] = "many" if many else "one"
        said = f" (type {kind!r} read as cardinality {out['cardinality']})" if kind else ""
        notes.add(where, f"{{toEntity: {target}}} became {{name: {out['name']}, target: {target}}}{said}")
        notes.moved([*where, "target"], [*where, "toEntity"])
        return out
    return item


def _entities(value: Any, notes: Notes) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, entity in value.items():
        where: list[str | int] = ["entities", name]
        if not isinstance(entity, dict):
            out[name] = entity
            continue
        entity = dict(entity)
        if "keys" in entity or "fields" in entity:
            keys = entity.pop("keys", None) or []
            fields = entity.pop("fields", None) or []
            attributes = dict(entity.get("attributes") or {})
            keys_list = list(keys) if isinstance(keys, list) else [keys]
            field_list = (
                list(fields) if isinstance(fields, list) else list(fields) if isinstance(fields, dict) else []
            )
            moves = []
            for index, field in enumerate(field_list):
                spec = fields[field] if isinstance(fields, dict) else {"type": "string"}
                spec = _attribute(
                    spec, notes, [*where, "fields", field if isinstance(fields, dict) else index]
                )
                attributes.setdefault(str(field), {**spec, "required": field in keys_list})
                moves.append(
                    (
                        [*where, "attributes", str(field)],
                        [*where, "fields", field if isinstance(fields, dict) else index],
                    )
                )
            for key in keys_list:
                if key not in attributes:
                    attributes[str(key)] = {"type": "string", "required": True}
                    moves.append(([*where, "attributes", str(key)], [*where, "keys", keys_list.index(key)]))
            entity["attributes"] = attributes
            untyped = (
                "" if isinstance(fields, dict) else " typed 'string' (the file gives no types: correct them)"
            )
            notes.add(
                where,
                f"keys/fields became {len(attributes)} attributes{untyped}; keys "
                f"{', '.join(map(str, keys_list)) or 'none'} are required",
            )
            notes.moved_many(moves)
        elif isinstance(entity.get("attributes"), dict):
            entity["attributes"] = {
                attr: _attribute(spec, notes, [*where, "attributes", attr])
                for attr, spec in entity["attributes"].items()
            }
        if isinstance(entity.get("relations"), list):
            entity["relations"] = [
                _relation(item, notes, [*where, "relations", i]) for i, item in enumerate(entity["relations"])
            ]
        out[name] = entity
    return out


def _detection_rule(rule: Any, notes: Notes, where: list[str | int]) -> Any:
    if isinstance(rule, str):
        notes.add(where, "text detection rule became a rule with that description")
        return {"description": rule}
    if isinstance(rule, dict) and "condition" in rule and "description" not in rule:
        condition = rule["condition"]
        try:
            check_condition(str(condition), CASE_FIELDS)
        except ConditionError:
            notes.add(
                where,
                f"condition {condition!r} is not a CEL condition exops can evaluate (the earlier system's "
                "guide calls these JSONPath queries): kept as the rule's description; add a CEL condition "
                "for exops to recognize the type by it",
            )
            return {**{k: v for k, v in rule.items() if k != "condition"}, "description": str(condition)}
        notes.add(where, "rule without a description: its condition is its description")
        return {**rule, "description": str(condition)}
    return rule


def _exception_types(
    value: Any, notes: Notes, generated: list[tuple[dict[str, Any], list[str | int]]]
) -> Any:
    if isinstance(value, list):
        out: dict[str, Any] = {}
        moves: list[tuple[Where, Where]] = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                item = dict(item)
                key = str(item.pop("exceptionType", None) or item.pop("name", None))
                out[key] = item
            else:
                key = str(item)
                out[key] = {"description": key}
                notes.add(["exceptionTypes", i], "bare type name: description set to the name")
            moves.append((["exceptionTypes", key], ["exceptionTypes", i]))
        notes.add(["exceptionTypes"], "list of exception types became a map keyed by type")
        notes.moved_many(moves)
        value = out
    if not isinstance(value, dict):
        return value
    types: dict[str, Any] = {}
    for name, definition in value.items():
        where: list[str | int] = ["exceptionTypes", name]
        if not isinstance(definition, dict):
            types[name] = definition
            continue
        definition = dict(definition)
        if "name" in definition:
            written = definition.pop("name")
            if written == name:
                notes.add([*where, "name"], "repeats the key: dropped")
            else:
                notes.add(
                    [*where, "name"],
                    f"{written!r} differs from the key {name!r}: dropped, the key names the type (the earlier "
                    "system looked types up by key too)",
                )
        for key in ("defaultSeverity", "severity"):
            if key in definition:
                level = severity(definition.pop(key), notes, [*where, key])
                rule = {
                    "id": f"{name}_default",
                    "description": f"default severity of {name} (imported from exceptionTypes.{name}.{key})",
                    "condition": f"exceptionType == '{name}'",
                    "severity": level,
                }
                generated.append((rule, [*where, key]))
                notes.add(
                    [*where, key],
                    f"{level} became the severity rule {rule['id']} (exceptionType == '{name}'): a more "
                    "severe matching rule still wins, a less severe one no longer does",
                )
        if "tags" in definition:
            tags = definition.pop("tags")
            notes.add([*where, "tags"], f"dropped ({tags}): exops does not use tags on exception types")
        rules = definition.pop("severityRules", None)
        if isinstance(rules, list):
            for j, rule in enumerate(rules):
                if not isinstance(rule, dict):
                    notes.problem([*where, "severityRules", j], "expected {condition, severity}")
                    continue
                rule = dict(rule)
                condition = rule.pop("condition", None) or rule.pop("if", None)
                rule["condition"] = f"exceptionType == '{name}' && ({condition})"
                rule.setdefault("id", f"{name}_rule_{j + 1}")
                rule["severity"] = severity(
                    rule.get("severity"), notes, [*where, "severityRules", j, "severity"]
                )
                generated.append((rule, [*where, "severityRules", j]))
            notes.add(
                [*where, "severityRules"],
                f"{len(rules)} severity rule(s) of this type moved to severityRules, each limited to "
                f"exceptionType == '{name}' (the earlier engine ignored rules written here)",
            )
        if isinstance(definition.get("detectionRules"), list):
            definition["detectionRules"] = [
                _detection_rule(r, notes, [*where, "detectionRules", i])
                for i, r in enumerate(definition["detectionRules"])
            ]
        types[name] = definition
    return types


def _severity_rules(value: Any, notes: Notes, generated: list[tuple[dict[str, Any], list[str | int]]]) -> Any:
    if value is None and generated:
        value = []
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for i, rule in enumerate(value):
        if isinstance(rule, dict):
            rule = dict(rule)
            if "if" in rule and "condition" not in rule:
                rule["condition"] = rule.pop("if")
                notes.add(["severityRules", i], "renamed 'if' to 'condition'")
                notes.moved(["severityRules", i, "condition"], ["severityRules", i, "if"])
            condition = rule.get("condition")
            if isinstance(condition, str) and condition.strip().lower().startswith("if:"):
                rule["condition"] = condition.strip()[3:].strip()
                notes.add(["severityRules", i, "condition"], "leading 'if:' removed")
            if "severity" in rule:
                rule["severity"] = severity(rule["severity"], notes, ["severityRules", i, "severity"])
            if "id" not in rule:
                rule["id"] = f"severity_rule_{i + 1}"
                notes.add(["severityRules", i], f"rule had no id: named it {rule['id']!r}")
        out.append(rule)
    taken = {str(r.get("id")) for r in out if isinstance(r, dict)}
    for rule, origin in generated:
        rule["id"] = unique(str(rule["id"]), taken)
        notes.moved(["severityRules", len(out)], origin, whole=True)
        out.append(rule)
    return out


def _is_old_parameters(value: Any) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    if isinstance(value.get("type"), str) or _SCHEMA_KEYWORDS & set(value):
        return False
    return all(
        isinstance(spec, str) or (isinstance(spec, dict) and ("type" in spec or "required" in spec))
        for spec in value.values()
    )


def _parameters(
    value: dict[str, Any], notes: Notes, where: list[str | int], entities: set[str], *, all_required: bool
) -> dict[str, Any]:
    """``{field: {type, required}}`` or ``{field: "string"}`` as a JSON Schema of an object."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field, spec in value.items():
        type_word = spec if isinstance(spec, str) else spec.get("type")
        schema = json_schema_for(type_word, entities) if isinstance(type_word, str) else None
        if type_word is not None and schema is None:
            notes.problem([*where, field], f"type {type_word!r} is not understood: write one of {TYPE_WORDS}")
            schema = {}
        extra = (
            {k: v for k, v in spec.items() if k not in ("type", "required")} if isinstance(spec, dict) else {}
        )
        properties[field] = {**(schema or {}), **extra}
        wanted = all_required if isinstance(spec, str) else bool(spec.get("required"))
        if wanted:
            required.append(field)
    schema_out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema_out["required"] = required
    return schema_out


def _auth(value: Any, domain: str, tool: str, notes: Notes, where: list[str | int]) -> Any:
    if not isinstance(value, dict) or "kind" in value or "type" not in value:
        return value
    written = str(value["type"])
    kind = _AUTH_KINDS.get(written.lower())
    if kind is None:
        notes.problem(
            [*where, "type"], f"auth type {written!r} is not understood: use none, apiKey, bearer or basic"
        )
        return {"kind": "none"}
    out: dict[str, Any] = {"kind": kind}
    header = value.get("header") or value.get("headerName")
    if header:
        out["header"] = header
    if kind != "none":
        ref = secret_name(
            domain, tool, "CREDENTIALS" if kind == "basic" else "TOKEN" if kind == "bearer" else "API_KEY"
        )
        out["secretRef"] = ref
        given = [k for k in _AUTH_VALUES if value.get(k)]
        said = f"; the {', '.join(given)} written in the file is not copied into the pack" if given else ""
        notes.add(
            where,
            f"auth {{type: {written}}} became {{kind: {kind}, secretRef: {ref}}}: set the secret {ref} in "
            f"EXOPS_SECRETS{said}",
        )
    else:
        notes.add(where, f"auth {{type: {written}}} became {{kind: none}}")
    return out


def _tool(
    name: str, value: Any, domain: str, entities: set[str], notes: Notes, where: list[str | int]
) -> Any:
    if not isinstance(value, dict):
        return value
    tool = dict(value)
    if "name" in tool:
        written = tool.pop("name")
        if written == name:
            notes.add([*where, "name"], "repeats the key: dropped")
        else:
            notes.add([*where, "name"], f"{written!r} differs from the key {name!r}: the key names the tool")
    if "argsSchema" in tool and "parameters" not in tool:
        args = tool.pop("argsSchema")
        if isinstance(args, dict):
            tool["parameters"] = _parameters(args, notes, [*where, "argsSchema"], entities, all_required=True)
            notes.add(
                [*where, "argsSchema"],
                f"became the JSON Schema parameters; every argument ({', '.join(args) or 'none'}) is "
                "required, as the listed arguments of a call",
            )
        else:
            tool["parameters"] = args
        notes.moved([*where, "parameters"], [*where, "argsSchema"], whole=True)
    elif _is_old_parameters(tool.get("parameters")):
        old = tool["parameters"]
        tool["parameters"] = _parameters(old, notes, [*where, "parameters"], entities, all_required=False)
        required = tool["parameters"].get("required", [])
        notes.add(
            [*where, "parameters"],
            "{field: {type, required}} became a JSON Schema (required: "
            f"{', '.join(required) or 'none'}); arguments are now checked against it",
        )
        notes.moved([*where, "parameters"], [*where, "parameters"], whole=True)
    if "returns" in tool:
        returned = tool.pop("returns")
        schema = json_schema_for(returned, entities) if isinstance(returned, str) else None
        if schema is None:
            notes.problem(
                [*where, "returns"], f"type {returned!r} is not understood: write one of {TYPE_WORDS}"
            )
        elif "outputSchema" not in tool:
            tool["outputSchema"] = schema
            notes.add([*where, "returns"], f"became outputSchema {schema}: replies are checked against it")
            notes.moved([*where, "outputSchema"], [*where, "returns"], whole=True)
    if "version" in tool:
        notes.add(
            [*where, "version"],
            f"tool version {tool.pop('version')!r} dropped: a tool is versioned with its domain pack",
        )
    if "maxRetries" in tool and "retries" not in tool:
        tool["retries"] = tool.pop("maxRetries")
        notes.add(
            [*where, "maxRetries"], "renamed to retries (capped at run time by guardrails.maxAutoRetries)"
        )
        notes.moved([*where, "retries"], [*where, "maxRetries"])
    if "auth" in tool:
        tool["auth"] = _auth(tool["auth"], domain, name, notes, [*where, "auth"])
    return tool


def _tools(value: Any, domain: str, entities: set[str], notes: Notes) -> Any:
    if not isinstance(value, dict):
        return value
    grouped = bool(value) and all(isinstance(v, list) for v in value.values())
    if not grouped:
        return {name: _tool(name, d, domain, entities, notes, ["tools", name]) for name, d in value.items()}
    out: dict[str, Any] = {}
    moves: list[tuple[list[str | int], list[str | int]]] = []
    for category, entries in value.items():
        mutating = _TOOL_CATEGORY_MUTATES.get(category, True)
        names: list[str] = []
        for j, entry in enumerate(entries):
            where: list[str | int] = ["tools", category, j]
            if isinstance(entry, dict):
                name = entry.get("name")
                if not isinstance(name, str) or not name:
                    notes.problem(where, "a tool in a group needs a name: {name, description, argsSchema}")
                    continue
                definition: dict[str, Any] = {k: v for k, v in entry.items() if k != "name"}
                definition.setdefault("description", f"{name} (from the '{category}' tool group)")
                definition.setdefault("mutating", mutating)
                out[name] = _tool(name, definition, domain, entities, notes, ["tools", name])
            else:
                name = str(entry)
                out[name] = {
                    "description": f"Imported from the '{category}' tool group; describe it and give an endpoint.",
                    "parameters": {"type": "object"},
                    "mutating": mutating,
                }
            names.append(name)
            moves.append((["tools", name], where))
        effect = "read-only" if not mutating else "state-changing"
        bare = all(not isinstance(entry, dict) for entry in entries)
        notes.add(
            ["tools", category],
            f"tools grouped under {category!r} became {len(names)} "
            + ("minimal definitions" if bare else "definitions")
            + f" ({', '.join(names) or 'none'}), assumed {effect} from the group name; no endpoint"
            + (", any arguments" if bare else "")
            + ": they run only as dry runs until an endpoint is added",
        )
    notes.moved_many(moves)
    return out


def upgrade_domain(data: dict[str, Any], notes: Notes, source: str = "") -> dict[str, Any]:
    """The same domain pack in the current layout; ``notes`` records each rewrite. ``source`` is the
    file the pack came from (a missing version is taken from a ``<version>.json`` file name)."""
    data = dict(data)
    _version(data, notes, source)
    domain_name = str(data.get("domainName") or "")
    if "ontology" in data:
        data["ontology"] = _ontology(data["ontology"], notes)
    if "entities" in data:
        data["entities"] = _entities(data["entities"], notes)
    entities = set(data["entities"]) if isinstance(data.get("entities"), dict) else set()
    generated: list[tuple[dict[str, Any], list[str | int]]] = []
    if "exceptionTypes" in data:
        data["exceptionTypes"] = _exception_types(data["exceptionTypes"], notes, generated)
    if "severityRules" in data or generated:
        data["severityRules"] = _severity_rules(data.get("severityRules"), notes, generated)
    if "defaultSeverity" in data:
        data["defaultSeverity"] = severity(data["defaultSeverity"], notes, ["defaultSeverity"])
    if "tools" in data:
        data["tools"] = _tools(data["tools"], domain_name, entities, notes)
    tools = ToolIndex.of(data.get("tools"))
    if "playbooks" in data:
        data["playbooks"] = convert_playbooks(data["playbooks"], tools, notes, "playbooks")
    if "guardrails" in data:
        if data["guardrails"] is None:
            del data["guardrails"]
            notes.add(["guardrails"], "null: left out (the built-in defaults apply)")
        else:
            data["guardrails"] = upgrade_guardrails(data["guardrails"], notes, ["guardrails"])
    if "testSuites" in data:
        data["testSuites"] = upgrade_test_suites(data["testSuites"], domain_name, notes)
    return data
