"""Placeholders in playbook step parameters, rendered in a sandbox.

Step parameters may say ``{{ exception.rawPayload.orderId }}``; they are rendered with a sandboxed
Jinja2 environment (no attribute tricks, no imports) where a missing value is an error, so a step
fails clearly instead of calling a tool with an empty id.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_WHOLE = "{{"


class TemplateRenderError(ValueError):
    """A placeholder names a value that does not exist, or is malformed."""


# Compiling costs about half a millisecond and the same few step parameters are rendered for every
# case, so compiled expressions and templates are kept by their source text. A source that does not
# compile raises, and lru_cache never stores a raise: the error is reported every time.
@lru_cache(maxsize=2048)
def _expression(source: str) -> Any:
    return _ENV.compile_expression(source, undefined_to_none=False)


@lru_cache(maxsize=2048)
def _template(source: str) -> Template:
    return _ENV.from_string(source)


def _render_string(text: str, values: Mapping[str, Any], where: str) -> Any:
    if _WHOLE not in text and "{%" not in text:
        return text
    stripped = text.strip()
    try:
        # A value that is exactly one placeholder keeps its type (a number stays a number).
        if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
            result = _expression(stripped[2:-2].strip())(**values)
            if isinstance(result, StrictUndefined):
                str(result)  # raises UndefinedError with the missing name
            return result
        return _template(text).render(**values)
    except UndefinedError as exc:
        raise TemplateRenderError(f"{where}: {exc.message}") from None
    except TemplateError as exc:
        raise TemplateRenderError(f"{where}: cannot render {text!r}: {exc}") from None


def render_value(value: Any, values: Mapping[str, Any], where: str = "value") -> Any:
    """Render every string inside ``value`` (dicts and lists included)."""
    if isinstance(value, str):
        return _render_string(value, values, where)
    if isinstance(value, dict):
        return {key: render_value(item, values, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, values, f"{where}[{index}]") for index, item in enumerate(value)]
    return value
