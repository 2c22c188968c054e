"""Console output shared by the CLI commands: rich for people, plain lines for problems."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console

from packs.problems import Problem

console = Console(soft_wrap=True, highlight=False)
errors = Console(stderr=True, soft_wrap=True, highlight=False)


def print_problems(problems: Iterable[Problem]) -> int:
    """One ``FILE: PATH: message`` line per problem on stdout; returns how many."""
    count = 0
    for problem in problems:
        console.print(str(problem), markup=False)
        count += 1
    return count


def print_notices(notices: Iterable[Problem]) -> None:
    for notice in notices:
        errors.print(f"notice: {notice}", markup=False, style="yellow")
