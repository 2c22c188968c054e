"""Imports flow one way: packs ← tools ← prompts ← graph ← app; nothing below app uses FastAPI or sessions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
LAYERS = ["packs", "tools", "prompts", "graph", "app"]
FORBIDDEN_BELOW_APP = ("fastapi", "starlette", "sqlalchemy.orm", "app")


def imported_modules(package: str) -> list[tuple[Path, str]]:
    found = []
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.extend((path, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.extend([(path, node.module)])
    return found


@pytest.mark.parametrize("package", LAYERS[:-1])
def test_no_upward_imports(package: str) -> None:
    above = LAYERS[LAYERS.index(package) + 1 :]
    bad = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path, module in imported_modules(package)
        if module.split(".")[0] in above or module.startswith(FORBIDDEN_BELOW_APP)
    ]
    assert bad == []


def test_evals_sit_below_the_app() -> None:
    """The eval suite drives graph, prompts, tools and packs; the app wires it in (app/evals), never
    the other way round."""
    bad = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path, module in imported_modules("evals")
        if module.split(".")[0] == "app" or module.startswith(FORBIDDEN_BELOW_APP)
    ]
    assert bad == []
