"""The similar-case memory the triage node consults; the memory issue supplies a real one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class SimilarCase:
    exception_id: str
    exception_type: str
    score: float
    summary: str
    outcome: str | None = None


class SimilarCaseMemory(Protocol):
    """Per-tenant memory of past cases; one tenant never sees another's."""

    async def search(self, tenant_id: str, exception: Mapping[str, Any], k: int = 5) -> list[SimilarCase]: ...

    async def remember(
        self, tenant_id: str, exception: Mapping[str, Any], outcome: Mapping[str, Any]
    ) -> None: ...
