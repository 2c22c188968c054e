"""Problems found in pack files, each pointing at a file and a JSONPath inside it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from packs.common import TENANT_ID_PATTERN, TENANT_ID_RULE


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


class PackError(Exception):
    """Raised when a pack cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def json_path(parts: Iterable[str | int]) -> str:
    """``("playbooks", 2, "steps")`` → ``$.playbooks[2].steps``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("_", "a").replace("-", "a").isalnum() and not part[:1].isdigit():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


def _real_location(loc: tuple[str | int, ...], data: Any) -> list[str | int]:
    """Drop the segments pydantic adds that are not in the document (union tags, key markers)."""
    parts: list[str | int] = []
    node: Any = data
    for segment in loc:
        in_list = isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node)
        if in_list or (isinstance(node, dict) and segment in node):
            parts.append(segment)
            node = node[segment]
        elif isinstance(segment, str) and segment.startswith("[") and segment.endswith("]"):
            continue  # "[key]" marks an error on a mapping key, already named by the previous part
        elif isinstance(node, dict) and segment in (node.get("type"), node.get("kind")):
            continue  # discriminated-union tag
        elif segment in ("function-after", "function-before", "function-wrap"):
            continue
        else:
            parts.append(segment)
            node = None
    return parts


def _model_fields(class_name: str) -> list[str] | None:
    """The fields of the pack model called ``class_name`` (pydantic names it in some errors)."""
    from pydantic import BaseModel

    pending: list[type[BaseModel]] = [BaseModel]
    while pending:
        cls = pending.pop()
        if cls.__name__ == class_name and cls.__module__.startswith("packs."):
            return list(cls.model_fields)
        pending.extend(cls.__subclasses__())
    return None


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    if value is None:
        return "null"
    return f"{value!r}"


def _message(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind in ("model_type", "model_attributes_type", "dataclass_type"):
        fields = _model_fields(str(ctx.get("class_name", "")))
        expected = f"an object with the fields {', '.join(fields)}" if fields else "an object"
        return f"expected {expected}, not {_shape(value)}"
    if kind == "dict_type":
        return f"expected an object (a mapping of names to values), not {_shape(value)}"
    if kind == "list_type":
        return f"expected a list, not {_shape(value)}"
    if kind == "string_type":
        return f"expected text, not {_shape(value)}"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind in ("literal_error", "enum"):
        return f"invalid value {value!r}: expected {ctx.get('expected')}"
    discriminator = str(ctx.get("discriminator", "kind")).strip("'")
    if kind == "union_tag_invalid":
        return f"unknown {discriminator} {ctx.get('tag')!r}: expected {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return f"required field '{discriminator}' is missing"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == TENANT_ID_PATTERN:
        return f"invalid tenant id {value!r}: {TENANT_ID_RULE}"
    if kind == "string_pattern_mismatch":
        return f"invalid value {value!r}: must match {ctx.get('pattern')}"
    return str(error["msg"])


def problems_from_validation(file: str, error: ValidationError, data: Any) -> list[Problem]:
    """Translate pydantic errors into problems with paths as the author wrote them."""
    found = []
    for item in error.errors():
        loc = tuple(item["loc"])
        found.append(Problem(file, json_path(_real_location(loc, data)), _message(item)))
    return sorted(set(found), key=lambda p: (p.path, p.message))
