"""Prompts: versioned template files rendered from values, and the shapes LLM answers must take."""
