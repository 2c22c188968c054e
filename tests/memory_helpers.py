"""Similar-case memory in tests: a small deterministic embedding, and cases written straight into the
tables (as the projection leaves a finished case) for fixed corpora with known answers."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from app.db.models import ExceptionCase
from app.db.session import Database
from app.memory.embeddings import Vectors
from graph.memory import tokens


class HashEmbedder:
    """Bag of words hashed into ``dimension`` signed buckets, L2-normalized: texts sharing words are
    close, texts sharing none are (nearly) orthogonal. ``calls`` counts the texts it embedded."""

    def __init__(self, dimension: int = 256, name: str = "hash") -> None:
        self.dimension = dimension
        self.model_key = f"test:{name}{dimension}"
        self.calls = 0

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += len(texts)
        matrix = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in tokens(text):
                digest = hashlib.sha256(word.encode()).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dimension
                matrix[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def store_case(
    db: Database, tenant_id: str, exception_id: str, exception_type: str, *, severity: str = "LOW",
    status: str = "RESOLVED", attributes: dict[str, Any] | None = None, text: str = "",
    playbook_id: str | None = None, finished: datetime | None = None, summary: str = "",
) -> None:  # fmt: skip
    """A finished case's row as the projection leaves it (the canonical record in ``record``)."""
    attributes = attributes or {}
    finished = finished or NOW
    record = {
        "exceptionId": exception_id, "tenantId": tenant_id, "exceptionType": exception_type, "severity": severity,
        "sourceSystem": "recon", "rawPayload": {**attributes, **({"description": text} if text else {})},
        "normalizedContext": {"attributes": attributes},
    }  # fmt: skip
    async with db.session() as session:
        session.add(
            ExceptionCase(
                tenant_id=tenant_id, exception_id=exception_id, source_system="recon", exception_type=exception_type,
                severity=severity, status=status, playbook_id=playbook_id, summary=summary or text, raw=record,
                record=record, result={}, processing="done", received_at=finished - timedelta(minutes=30),
                updated_at=finished, resolved_at=finished,
            )
        )  # fmt: skip
