"""Small rewrites shared by both pack kinds: severities, value types, secret names, ids."""

from __future__ import annotations

import re
from typing import Any

from packs.common import SEVERITIES
from packs.importer.notes import Notes, Where

_JSON_TYPES = {
    "string": "string",
    "str": "string",
    "text": "string",
    "number": "number",
    "float": "number",
    "double": "number",
    "decimal": "number",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "boolean": "boolean",
    "bool": "boolean",
    "object": "object",
    "dict": "object",
    "map": "object",
    "json": "object",
    "array": "array",
    "list": "array",
}
_FORMATS = {"date": "date", "datetime": "date-time", "date-time": "date-time", "timestamp": "date-time"}
TYPE_WORDS = "string, number, integer, boolean, object, array, date, datetime, or TYPE[] for a list"


def severity(value: Any, notes: Notes, where: Where) -> Any:
    """``"high"`` → ``"HIGH"`` with a notice; anything else is left for the schema to judge."""
    if isinstance(value, str) and value != value.upper() and value.strip().upper() in SEVERITIES:
        notes.add(where, f"severity {value!r} read as {value.strip().upper()}")
        return value.strip().upper()
    return value


def severities(values: Any, notes: Notes, where: Where) -> Any:
    if not isinstance(values, list):
        return values
    return [severity(v, notes, [*where, i]) for i, v in enumerate(values)]


def json_schema_for(type_name: str, entities: set[str] | None = None) -> dict[str, Any] | None:
    """A JSON Schema for an old-style type word (``string``, ``string[]``, ``int``, ``Claim``)."""
    text = type_name.strip()
    if text.endswith("[]"):
        inner = json_schema_for(text[:-2], entities)
        return None if inner is None else {"type": "array", "items": inner}
    lowered = text.lower()
    if lowered in _JSON_TYPES:
        return {"type": _JSON_TYPES[lowered]}
    if lowered in _FORMATS:
        return {"type": "string", "format": _FORMATS[lowered]}
    if entities is not None and text in entities:
        return {"type": "object", "description": f"the entity {text}"}
    return None


def attribute_type(type_name: str) -> str | None:
    """An entity attribute type for an old-style type word; None when it cannot be told."""
    text = type_name.strip()
    if text.endswith("[]"):
        return "array"
    lowered = text.lower()
    if lowered in ("date",):
        return "date"
    if lowered in ("datetime", "date-time", "timestamp"):
        return "datetime"
    return _JSON_TYPES.get(lowered)


def secret_name(*parts: str) -> str:
    """``("TENANT_HEALTHCARE_042", "teamsWebhook", "URL")`` → ``TENANT_HEALTHCARE_042_TEAMSWEBHOOK_URL``."""
    joined = "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_") for p in parts if p)
    return joined.upper()


def identifier(text: str, fallback: str) -> str:
    """A pack id (a letter, then letters, digits and ``_ . : -``) made from ``text``."""
    cleaned = re.sub(r"[^A-Za-z0-9_.:-]+", "_", text).strip("_")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"{fallback}_{cleaned}" if cleaned else fallback
    return cleaned[:128]


def unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate
