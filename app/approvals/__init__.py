"""Approvals: the queue of decisions people owe, and deciding them (which resumes the graph)."""
