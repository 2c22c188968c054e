"""CEL conditions used by severity rules, routing rules and playbook matches.

Expressions are compiled once, when a pack is validated (the compiled program is cached by its
source text), so a syntax error is a pack error that names the file and the rule, and evaluation at
run time is only ``Program.execute``. A condition that touches a field the exception does not have,
or compares values of different types, simply does not match: packs are written against many
upstream systems and a missing field is normal, not a crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any

import cel
from pydantic import AfterValidator

# Variables a condition may read. Severity rules run before the severity is known, so they cannot
# use it; routing rules and playbook matches run after triage and can.
CASE_FIELDS: frozenset[str] = frozenset(
    {
        "exceptionType",
        "sourceSystem",
        "tenantId",
        "domainName",
        "timestamp",
        "rawPayload",
        "normalizedContext",
        "slaMinutesRemaining",
        "policyTags",
    }
)
TRIAGED_CASE_FIELDS: frozenset[str] = CASE_FIELDS | {"severity"}


class ConditionError(ValueError):
    """A condition that does not compile or reads a variable conditions cannot see."""


@lru_cache(maxsize=8192)
def compile_condition(source: str) -> Any:
    """Compile a CEL expression (cached by its text); raise ConditionError with a readable reason."""
    if not source.strip():
        raise ConditionError("condition is empty")
    try:
        return cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        first_line = str(exc).split("\n", 1)[0]
        reason = first_line.split(": ERROR: ", 1)[-1]
        located = re.match(r"<input>:(\d+):(\d+): (.*)", reason)
        if located:
            reason = f"column {located.group(2)}: {located.group(3)}"
        raise ConditionError(f"condition does not compile: {reason}") from None


def check_condition(source: str, allowed: frozenset[str]) -> str:
    """Compile ``source`` and check it only reads ``allowed`` variables; return it unchanged."""
    program = compile_condition(source)
    unknown = sorted(set(program.variables()) - allowed)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise ConditionError(
            f"condition reads unknown variable {names}; conditions can read: {', '.join(sorted(allowed))}"
        )
    return source


def _check_case_condition(source: str) -> str:
    return check_condition(source, CASE_FIELDS)


def _check_triaged_condition(source: str) -> str:
    return check_condition(source, TRIAGED_CASE_FIELDS)


CaseCondition = Annotated[str, AfterValidator(_check_case_condition)]
"""A condition over the exception before triage (severity rules)."""

TriagedCondition = Annotated[str, AfterValidator(_check_triaged_condition)]
"""A condition over the triaged exception (routing rules, playbook matches)."""


class ConditionFacts:
    """The variables of one case, converted to CEL once for every condition evaluated against them.

    Converting a case to CEL values costs about a hundred times more than evaluating a condition on
    it, and a case meets some thirty conditions on its way, so each decision (severity rules,
    detection rules, routing rules, playbook matches) converts the case once and evaluates all its
    conditions against that. A case holding a value CEL cannot represent matches nothing, exactly
    as if every evaluation had failed on it.
    """

    __slots__ = ("_context",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        try:
            self._context: Any = cel.Context(dict(data))
        except (RuntimeError, TypeError, ValueError):
            self._context = None

    def matches(self, source: str) -> bool:
        """Evaluate a compiled condition; a missing field, a type clash or a non-boolean is no match."""
        if self._context is None:
            return False
        program = compile_condition(source)
        try:
            result = program.execute(self._context)
        except (KeyError, RuntimeError, TypeError, ValueError):
            return False
        return result is True
