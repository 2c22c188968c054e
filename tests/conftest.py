from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).parent.parent / "packs" / "samples"


def _read(name: str) -> dict[str, Any]:
    data = yaml.safe_load((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


_DOMAIN = _read("mini-domain.yaml")
_TENANT = _read("mini-tenant.yaml")


@pytest.fixture
def domain_doc() -> dict[str, Any]:
    """A fresh copy of the mini domain pack document, to mutate."""
    return copy.deepcopy(_DOMAIN)


@pytest.fixture
def tenant_doc() -> dict[str, Any]:
    return copy.deepcopy(_TENANT)


@pytest.fixture
def write_pack(tmp_path: Path) -> Callable[[str, Any], Path]:
    """Write a document (dict → YAML/JSON by suffix, str → verbatim) under tmp_path."""

    def write(name: str, content: Any) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        elif name.endswith(".json"):
            import json

            path.write_text(json.dumps(content, indent=2))
        else:
            path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    return write
