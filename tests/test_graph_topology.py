"""The graph's shape and its input/output schemas, pinned by snapshots."""

from __future__ import annotations

import json
from collections.abc import Callable

from graph.builder import build_graph


def test_topology(snapshot: Callable[[str, str], None]) -> None:
    snapshot("graph.mmd", build_graph().get_graph().draw_mermaid())


def test_input_and_output_schemas(snapshot: Callable[[str, str], None]) -> None:
    graph = build_graph()
    schemas = {"input": graph.get_input_jsonschema(), "output": graph.get_output_jsonschema()}
    snapshot("graph-schemas.json", json.dumps(schemas, indent=2, sort_keys=True) + "\n")


def test_conditional_edges_cover_every_branch() -> None:
    edges = {(e.source, e.target) for e in build_graph().get_graph().edges}
    for branch in [
        ("intake", "escalate"),  # unknown type
        ("supervisor", "feedback"),  # non-actionable skips resolution
        ("supervisor", "approval"),
        ("supervisor", "escalate"),
        ("approval", "feedback"),  # rejection
        ("approval", "approval"),  # a comment waits again
        ("execute", "human_step"),
        ("human_step", "execute"),
    ]:
        assert branch in edges, branch
