"""The importer: older pack layouts rewritten into the current one, with a note for every change.

Each rewrite is a no-op on a pack already in the current layout, so the loader always runs it and a
pack is "older" exactly when the importer had something to say.
"""

from __future__ import annotations

import copy
from typing import Any

from packs.common import PackKind
from packs.domain import DomainPack
from packs.importer.domain import upgrade_domain
from packs.importer.notes import Notes
from packs.importer.tenant import duration_minutes, upgrade_tenant
from packs.problems import Problem

__all__ = ["duration_minutes", "upgrade_document"]


def upgrade_document(
    kind: PackKind, data: dict[str, Any], file: str, *, domain: DomainPack | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """Return the document in the current layout and the notes on what was rewritten."""
    notes = Notes(file)
    original = copy.deepcopy(data)
    upgraded = (
        upgrade_domain(original, notes) if kind == "domain" else upgrade_tenant(original, domain, notes)
    )
    return upgraded, notes.items
