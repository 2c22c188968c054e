"""Reading pack files: JSON or YAML (by extension, else by content), and telling the two kinds apart.

Every failure is a ``PackError`` naming the file, never a parser traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from packs.common import PackKind
from packs.problems import PackError, Problem

PACK_SUFFIXES = (".json", ".yaml", ".yml")
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader parses the sample packs about ten times faster than the pure-Python one."""


def parse_document(text: str, file: str, *, fmt: str | None = None) -> dict[str, Any]:
    """Parse pack text; ``fmt`` is ``json`` or ``yaml``, guessed from the content when None."""
    if not text.strip():
        raise PackError([Problem(file, "$", "file is empty")])
    if fmt is None:
        fmt = "json" if text.lstrip()[:1] in "{[" else "yaml"
    data: Any
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PackError(
                [Problem(file, "$", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
            ) from None
    else:
        try:
            data = yaml.load(text, Loader=SAFE_LOADER)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            reason = getattr(exc, "problem", None) or str(exc)
            raise PackError([Problem(file, "$", f"invalid YAML{where}: {reason}")]) from None
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
