"""What a JSON value may hold in exops, checked where values come in.

Everything exops accepts is stored as JSON (SQLite JSON, PostgreSQL JSONB), checkpointed by the
graph (msgpack) and served back as JSON. Python's ``json`` module reads more than those can carry:
``NaN`` and ``Infinity``, integers of any size, nesting until the recursion limit. Each of these used
to be accepted and then fail later, far from its cause (a 500, or a case escalated with "Integer
exceeds 64-bit range"). So the rules are checked at the door, with the path of the offending value:

- nesting: a text is scanned *before* it is parsed (``nesting_problem``), so no parser recurses into
  a hostile document, and a value nested too deep never reaches the serializers (which give up
  near 255 levels);
- numbers: integers fit in a signed 64-bit integer (larger identifiers travel as strings), floats
  are finite;
- types: only mappings with string keys, lists, strings, numbers, booleans and null
  (``json_problems``; pydantic fields typed ``JsonObject`` run it and report each path).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, time
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

DEFAULT_MAX_DEPTH = 64
"""Levels of nesting (objects and lists) a document may have; a pack needs about ten."""
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""The integers exops carries: a signed 64-bit integer, what the checkpoints and most clients hold."""
MAX_PROBLEMS = 20
"""A hostile document could hold a million bad values: report the first ones, not all."""

INTEGER_RANGE = (
    "the integer does not fit in 64 bits (-9223372036854775808 to 9223372036854775807): send it as a string"
)
NOT_FINITE = "NaN and Infinity are not JSON numbers"
A_DATE = "a date is not allowed here; quote it"

Path = tuple[str | int, ...]

_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
"""A JSON string, escapes included: cut out before counting, so what a string holds never counts."""
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_CONSTANTS = re.compile(r"NaN|Infinity")
_PARENTHESES = str.maketrans("[{]}", "(())")


def nesting_problem(text: str, max_depth: int = DEFAULT_MAX_DEPTH) -> str | None:
    """Why a JSON text must not be parsed (nested deeper than ``max_depth``, or NaN/Infinity), or None.

    Runs before the parser, at C speed: the strings are cut out, the brackets kept, then each pass
    removes the innermost ``()`` pairs, one level per pass, ``max_depth`` passes at most; about the
    cost of parsing the text (20 ms for 680 KB), whatever the text. Unbalanced text (not JSON) is
    left to the parser, which refuses it (its recursion is guarded by Python).
    """
    bare = _STRINGS.sub("", text)
    if ("N" in bare or "I" in bare) and _CONSTANTS.search(bare):
        return NOT_FINITE
    brackets = _NOT_BRACKETS.sub("", bare).translate(_PARENTHESES)
    for _ in range(max_depth):
        if "()" not in brackets:
            return None
        brackets = brackets.replace("()", "")
    return f"nested deeper than {max_depth} levels" if "()" in brackets else None


def _describe(value: Any) -> str:
    if isinstance(value, date | time):
        return A_DATE
    if isinstance(value, bytes | bytearray):
        return "binary data is not allowed here; use a string"
    if isinstance(value, set | frozenset):
        return "a set is not allowed here; use a list"
    return f"a {type(value).__name__} value is not allowed here"


def _key_problem(key: Any) -> str:
    kind = (
        "a date" if isinstance(key, date | time)
        else "null" if key is None
        else "a boolean" if isinstance(key, bool)
        else "a number" if isinstance(key, int | float)
        else f"a {type(key).__name__}"
    )  # fmt: skip
    return f"a key must be a string, not {kind}; quote it"


def json_problems(value: Any, *, max_depth: int | None = None) -> list[tuple[Path, str]]:
    """Every value (up to ``MAX_PROBLEMS``) that JSON as exops stores it cannot hold, with its path.

    Iterative, so a deep value cannot exhaust the stack; ``max_depth`` also bounds the nesting.
    """
    problems: list[tuple[Path, str]] = []
    stack: list[tuple[Path, Any, int]] = [((), value, 1)]
    while stack and len(problems) < MAX_PROBLEMS:
        path, node, depth = stack.pop()
        if isinstance(node, dict | list | tuple) and max_depth is not None and depth > max_depth:
            problems.append((path, f"nested deeper than {max_depth} levels"))
        elif isinstance(node, dict):
            for key, item in reversed(node.items()):
                if not isinstance(key, str):
                    problems.append(((*path, str(key)), _key_problem(key)))
                    continue
                stack.append(((*path, key), item, depth + 1))
        elif isinstance(node, list | tuple):
            stack.extend(((*path, index), item, depth + 1) for index, item in reversed(list(enumerate(node))))
        elif node is None or isinstance(node, str | bool):
            continue
        elif isinstance(node, int):
            if not INT_MIN <= node <= INT_MAX:
                problems.append((path, INTEGER_RANGE))
        elif isinstance(node, float):
            if not math.isfinite(node):
                problems.append((path, NOT_FINITE))
        else:
            problems.append((path, _describe(node)))
    return problems


def _refuse_non_finite(constant: str) -> Any:
    raise ValueError(NOT_FINITE)


def loads(text: str) -> Any:
    """``json.loads`` without NaN/Infinity (call ``nesting_problem`` first on untrusted text)."""
    return json.loads(text, parse_constant=_refuse_non_finite)


def _checked(value: dict[str, Any]) -> dict[str, Any]:
    problems = json_problems(value)
    if problems:
        raise ValidationError.from_exception_data(
            "JsonObject",
            [
                InitErrorDetails(type=PydanticCustomError("json_value", message), loc=path, input=None)
                for path, message in problems
            ],
        )
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_checked)]
"""A free-form JSON object (a payload, tool arguments) whose every value exops can store and
checkpoint; a refusal names the path inside it, e.g. ``body.rawPayload.amount``."""
