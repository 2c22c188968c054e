"""What the importer changed, each note pointing at the place in the original file.

Rewrites move things (``customGuardrails`` becomes ``guardrailOverrides``, a tool listed under
``tools.dbQueries[1]`` becomes ``tools.getClaim``), so a problem found later in the rewritten pack
would name a path the author never wrote. Every move is recorded here, and ``origin`` maps a path of
the rewritten pack back to the path in the file as written.
"""

from __future__ import annotations

from collections.abc import Sequence

from packs.problems import Problem, json_path

Where = Sequence[str | int]


def _under(path: str, prefix: str) -> bool:
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[")


class Notes:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Problem] = []
        """Notices: what was rewritten and what was assumed."""
        self.problems: list[Problem] = []
        """What cannot be imported as written (a careful reader could not tell what was meant)."""
        self._moves: list[list[tuple[str, str, bool]]] = []

    def add(self, where: Where, message: str) -> None:
        """A notice about the thing now at ``where`` (a path of the document being rewritten)."""
        self.items.append(Problem(self.file, self.origin(json_path(where)), message))

    def problem(self, where: Where, message: str) -> None:
        """Something at ``where`` that cannot be imported."""
        self.problems.append(Problem(self.file, self.origin(json_path(where)), message))

    def moved(self, new: Where, old: Where, *, whole: bool = False) -> None:
        """What is now at ``new`` was written at ``old``. With ``whole``, anything under ``new`` maps
        to ``old`` itself (the importer built ``new`` from the single value at ``old``)."""
        self.moved_many([(new, old)], whole=whole)

    def moved_many(self, pairs: Sequence[tuple[Where, Where]], *, whole: bool = False) -> None:
        """Several moves made by one rewrite (each path is mapped by at most one of them)."""
        if pairs:
            self._moves.append([(json_path(new), json_path(old), whole) for new, old in pairs])

    def origin(self, path: str) -> str:
        """The path, in the file as written, of what is now at ``path``."""
        for batch in reversed(self._moves):
            best = max(
                (move for move in batch if _under(path, move[0])), key=lambda m: len(m[0]), default=None
            )
            if best is not None:
                new, old, whole = best
                path = old if whole else old + path[len(new) :]
        return path
