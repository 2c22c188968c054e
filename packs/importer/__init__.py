"""The importer: older pack layouts rewritten into the current one, with a note for every change.

Each rewrite is a no-op on a pack already in the current layout, so the loader always runs it and a
pack is "older" exactly when the importer had something to say. Problems found in the rewritten
pack are mapped back (``Upgrade.located``) to the paths the author wrote.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from packs.common import PackKind
from packs.domain import DomainPack
from packs.importer.domain import upgrade_domain
from packs.importer.notes import Notes
from packs.importer.tenant import duration_minutes, fits, referenced_names, upgrade_tenant
from packs.problems import Problem

__all__ = ["Upgrade", "duration_minutes", "fits", "referenced_names", "upgrade_document"]


@dataclass(frozen=True)
class Upgrade:
    document: dict[str, Any]
    """The pack in the current layout."""
    notices: list[Problem]
    """What was rewritten or assumed, each at the path the author wrote."""
    problems: list[Problem]
    """What cannot be imported as written (the rest of the pack was still rewritten)."""
    notes: Notes

    def located(self, problems: Iterable[Problem]) -> list[Problem]:
        """Problems found in ``document``, with paths mapped back to the file as written."""
        return [replace(p, path=self.notes.origin(p.path)) for p in problems]


def upgrade_document(
    kind: PackKind,
    data: dict[str, Any],
    file: str,
    *,
    domain: DomainPack | None = None,
    chosen: str | None = None,
    pin: bool = False,
) -> Upgrade:
    """The document in the current layout, the notes on what was rewritten, and what could not be.

    ``file`` is where the pack came from (a domain pack without a version takes it from a
    ``<version>.json`` file name). For tenant packs, ``domain`` is their domain pack; ``chosen`` says
    why it was picked when the pack does not name it, and ``pin`` records its version."""
    notes = Notes(file)
    original = copy.deepcopy(data)
    if kind == "domain":
        upgraded = upgrade_domain(original, notes, file)
    else:
        upgraded = upgrade_tenant(original, domain, notes, chosen=chosen, pin=pin)
    return Upgrade(upgraded, notes.items, notes.problems, notes)
