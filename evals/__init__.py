"""Evals: score prompts and policies against labelled cases before activating a new version."""
