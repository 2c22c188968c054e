"""What the importer changed, each note pointing at the place in the original file."""

from __future__ import annotations

from collections.abc import Sequence

from packs.problems import Problem, json_path


class Notes:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Problem] = []

    def add(self, where: Sequence[str | int], message: str) -> None:
        self.items.append(Problem(self.file, json_path(where), message))
