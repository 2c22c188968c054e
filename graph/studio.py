"""The compiled graph for ``langgraph dev`` / LangGraph Studio (see langgraph.json).

Studio supplies its own checkpointer. Runs need a ``RunContext`` (the tenant's packs and adapters),
which the exops CLI and API build from the pack registry; Studio is for inspecting the topology and
stepping through runs started with such a context.
"""

from __future__ import annotations

from graph.builder import build_graph

graph = build_graph()
