"""JSON Schemas of both pack kinds, generated from the models and kept in the repository for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from packs.common import PackKind
from packs.domain import DomainPack
from packs.tenant import TenantPolicyPack

SCHEMA_DIR = Path(__file__).parent / "schemas"
MODELS: dict[PackKind, type[BaseModel]] = {"domain": DomainPack, "tenant": TenantPolicyPack}
FILE_NAMES: dict[PackKind, str] = {"domain": "domain-pack.schema.json", "tenant": "tenant-pack.schema.json"}


def pack_schema(kind: PackKind) -> dict[str, Any]:
    schema = MODELS[kind].model_json_schema(mode="validation")
    title = "exops domain pack" if kind == "domain" else "exops tenant policy pack"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": title}


def render_schema(kind: PackKind) -> str:
    return json.dumps(pack_schema(kind), indent=2, sort_keys=True) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, name in FILE_NAMES.items():
        path = directory / name
        path.write_text(render_schema(kind), encoding="utf-8")
        written.append(path)
    return written
