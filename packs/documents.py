"""Reading pack files: JSON or YAML (by extension, else by content), and telling the two kinds apart.

Every failure is a ``PackError`` naming the file and the path, never a parser traceback; every
reader of pack text (the folder, uploads, ``/validate``, the CLI) comes through ``parse_value``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from packs.common import PackKind
from packs.jsonvalues import json_problems, loads, nesting_problem
from packs.problems import PackError, Problem, json_path
from packs.yamlload import DocumentProblems, load_yaml

PACK_SUFFIXES = (".json", ".yaml", ".yml")
MAX_DOCUMENT_CHARS = 2_000_000
"""A pack document's size, checked before parsing (the largest sample pack is 80 KB)."""


def parse_value(text: str, file: str, *, fmt: str | None = None) -> Any:
    """Parse JSON or YAML text into JSON data (``fmt`` ``json`` or ``yaml``; guessed when None).

    Both formats obey the same limits, checked while parsing, never after: the size, the nesting
    depth, the values an alias-laden YAML document expands to, and only JSON values (no dates,
    binary, sets, non-string keys, NaN, integers beyond 64 bits); see ``packs.yamlload``.
    """
    if not text.strip():
        raise PackError([Problem(file, "$", "file is empty")])
    if len(text) > MAX_DOCUMENT_CHARS:
        raise PackError(
            [Problem(file, "$", f"the document is {len(text)} characters; the limit is {MAX_DOCUMENT_CHARS}")]
        )
    if fmt is None:
        fmt = "json" if text.lstrip()[:1] in "{[" else "yaml"
    data: Any
    if fmt == "json":
        refused = nesting_problem(text)
        if refused is not None:
            raise PackError([Problem(file, "$", refused)])
        try:
            data = loads(text)
        except json.JSONDecodeError as exc:
            raise PackError(
                [Problem(file, "$", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
            ) from None
        except (ValueError, RecursionError) as exc:  # NaN, a 4300-digit integer, unbalanced nesting
            raise PackError([Problem(file, "$", f"invalid JSON: {exc}")]) from None
        problems = json_problems(data)
    else:
        try:
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            reason = getattr(exc, "problem", None) or str(exc)
            raise PackError([Problem(file, "$", f"invalid YAML{where}: {reason}")]) from None
        except DocumentProblems as exc:
            problems = exc.problems
        else:
            problems = []
    if problems:
        raise PackError([Problem(file, json_path(path), message) for path, message in problems])
    return data


def parse_document(text: str, file: str, *, fmt: str | None = None) -> dict[str, Any]:
    """Parse pack text (see ``parse_value``); a pack is a mapping at the top level."""
    data = parse_value(text, file, fmt=fmt)
    if not isinstance(data, dict):
        raise PackError(
            [Problem(file, "$", f"a pack must be a mapping at the top level, not {type(data).__name__}")]
        )
    return data


def read_document(path: Path) -> dict[str, Any]:
    """Read and parse one pack file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError([Problem(str(path), "$", f"cannot read file: {exc}")]) from None
    suffix = path.suffix.lower()
    fmt = "json" if suffix == ".json" else "yaml" if suffix in (".yaml", ".yml") else None
    return parse_document(text, str(path), fmt=fmt)


def detect_kind(data: dict[str, Any]) -> PackKind | None:
    """A tenant pack names a tenantId; a domain pack has a domainName and exception types (in the
    earlier system's snake_case too: ``tenant_id``, ``domain_name``, ``exception_types``)."""
    if "tenantId" in data or "tenant_id" in data:
        return "tenant"
    named = "domainName" in data or "domain_name" in data
    if named and any(key in data for key in ("exceptionTypes", "exception_types", "playbooks")):
        return "domain"
    return None


def pack_files(root: Path) -> list[Path]:
    """Pack files under ``root`` (a file or a folder), skipping JSON Schema files and hidden folders."""
    if root.is_file():
        return [root]
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if any(part.startswith(".") or part == "__pycache__" for part in relative):
            continue
        if path.is_file() and path.suffix.lower() in PACK_SUFFIXES and not path.name.endswith(".schema.json"):
            found.append(path)
    return found
