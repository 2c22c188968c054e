"""Prompt templates: every prompt the graph sends is a versioned file, rendered from values.

Keeping prompt text out of code lets evals score a prompt by id and version, lets the audit trail
say exactly which prompt produced an answer, and lets a reviewer read a prompt change as a diff of
one file. Templates are Jinja2 in a sandbox (a template cannot reach Python internals through the
values it is given) with ``StrictUndefined``: a forgotten value is an error naming the prompt, not a
silently empty line the model then guesses around. Values are data: text from upstream systems is
inserted as is and never itself rendered as a template.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel

TEMPLATES_DIR = Path(__file__).parent / "templates"
_KEYS = frozenset({"id", "version", "description", "system", "user"})


class PromptError(ValueError):
    """A template file is malformed, or a prompt could not be rendered from the values given."""


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt as written in its file; ``system`` may be empty for follow-up-only prompts."""

    id: str
    version: int
    description: str
    system: str
    user: str


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt ready to send: chat messages plus the id and version the audit trail records."""

    id: str
    version: int
    messages: list[dict[str, str]]


def _plain(value: Any) -> Any:
    """JSON for what callers pass besides plain data: pack models, dataclasses, dates, sets."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _to_json(value: Any) -> str:
    """``{{ x | json }}``: readable, stable JSON (Jinja's ``tojson`` HTML-escapes, which confuses models)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=_plain)


def _to_json_inline(value: Any) -> str:
    """``{{ x | json_inline }}``: the same, on one line (e.g. a tool's parameter schema in a list)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=_plain)


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["json"] = _to_json
    env.filters["json_inline"] = _to_json_inline
    return env


_ENV = _environment()


@dataclass(frozen=True)
class _Compiled:
    template: PromptTemplate
    variables: frozenset[str]
    parts: tuple[tuple[str, Template], ...]  # (role, compiled template), empty parts left out

    def render(self, values: Mapping[str, Any]) -> RenderedPrompt:
        t = self.template
        missing = sorted(self.variables - values.keys())
        unexpected = sorted(values.keys() - self.variables)
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing values: {', '.join(missing)}")
            if unexpected:
                parts.append(f"unexpected values: {', '.join(unexpected)}")
            raise PromptError(f"prompt {t.id!r} v{t.version}: {'; '.join(parts)}")
        messages = []
        for role, compiled in self.parts:
            try:
                content = compiled.render(**values).strip()
            except TemplateError as exc:  # e.g. a value lacking an attribute the template reads
                raise PromptError(f"prompt {t.id!r} v{t.version} ({role}): {exc}") from exc
            messages.append({"role": role, "content": content})
        return RenderedPrompt(id=t.id, version=t.version, messages=messages)


def _read(path: Path) -> PromptTemplate:
    where = path.name
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PromptError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise PromptError(f"{where}: expected a mapping with keys {sorted(_KEYS)}")
    keys = set(doc)
    if keys != _KEYS:
        problems = []
        if _KEYS - keys:
            problems.append(f"missing {sorted(_KEYS - keys)}")
        if keys - _KEYS:
            problems.append(f"unknown {sorted(keys - _KEYS)}")
        raise PromptError(f"{where}: {', '.join(problems)}")
    version = doc["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PromptError(f"{where}: version must be a positive integer, got {version!r}")
    for key in ("id", "description", "system", "user"):
        if not isinstance(doc[key], str):
            raise PromptError(f"{where}: {key} must be a string")
    if doc["id"] != path.stem:
        raise PromptError(f"{where}: id {doc['id']!r} must match the file name")
    template = PromptTemplate(doc["id"], version, doc["description"], doc["system"], doc["user"])
    _compile(template)  # syntax errors surface at load, naming the file
    return template


@lru_cache(maxsize=256)
def _compile(template: PromptTemplate) -> _Compiled:
    if not template.user.strip():
        raise PromptError(f"prompt {template.id!r}: user must not be empty")
    variables: set[str] = set()
    parts = []
    for role, source in (("system", template.system), ("user", template.user)):
        if not source.strip():
            continue
        try:
            variables |= meta.find_undeclared_variables(_ENV.parse(source))
            parts.append((role, _ENV.from_string(source)))
        except TemplateError as exc:
            raise PromptError(f"prompt {template.id!r} ({role}): template syntax error: {exc}") from exc
    return _Compiled(template, frozenset(variables), tuple(parts))


def load_prompts(directory: Path) -> dict[str, PromptTemplate]:
    """Read and check every ``*.yaml`` template in a folder (evals use this for candidate prompts)."""
    return {path.stem: _read(path) for path in sorted(directory.glob("*.yaml"))}


@lru_cache(maxsize=1)
def _builtin() -> dict[str, PromptTemplate]:
    return load_prompts(TEMPLATES_DIR)


def get_prompt(prompt_id: str) -> PromptTemplate:
    try:
        return _builtin()[prompt_id]
    except KeyError:
        raise PromptError(f"unknown prompt {prompt_id!r}; known: {', '.join(sorted(_builtin()))}") from None


def list_prompts() -> list[PromptTemplate]:
    return [template for _, template in sorted(_builtin().items())]


def prompt_variables(template: PromptTemplate) -> frozenset[str]:
    """The values rendering needs: all of them, and nothing else."""
    return _compile(template).variables


def render_template(template: PromptTemplate, /, **values: Any) -> RenderedPrompt:
    """Render any template, e.g. a candidate version an eval is scoring."""
    return _compile(template).render(values)


def render_prompt(prompt_id: str, /, **values: Any) -> RenderedPrompt:
    """Render a built-in prompt; every variable it reads must be given (``None`` meaning "none")."""
    return render_template(get_prompt(prompt_id), **values)
