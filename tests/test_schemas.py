"""The JSON Schemas in the repository match the models (regenerate with `make schemas`)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from packs.schema import FILE_NAMES, SCHEMA_DIR, render_schema

SAMPLES = Path(__file__).parent.parent / "packs" / "samples"


@pytest.mark.parametrize("kind", ["domain", "tenant"])
def test_schema_file_is_current(kind: str) -> None:
    path = SCHEMA_DIR / FILE_NAMES[kind]  # type: ignore[index]
    assert path.read_text() == render_schema(kind), f"{path} is stale: run `make schemas`"  # type: ignore[arg-type]


def test_sample_packs_validate_against_the_schema_files() -> None:
    schemas = {kind: json.loads((SCHEMA_DIR / name).read_text()) for kind, name in FILE_NAMES.items()}
    files = sorted(SAMPLES.rglob("*.yaml"))
    assert files
    for path in files:
        data = yaml.safe_load(path.read_text())
        kind = "tenant" if "tenantId" in data else "domain"
        jsonschema.validate(data, schemas[kind])  # type: ignore[index]
