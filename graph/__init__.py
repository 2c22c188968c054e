"""The agent graph: typed state, nodes, conditional edges, supervisor, approvals and checkpoints."""
