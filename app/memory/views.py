"""The similar cases of a case, explained: ``GET /exceptions/{tenantId}/{exceptionId}/similar``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ServicesDep, Viewer
from app.api.params import UtcDatetime
from app.api.problems import ProblemError, responses
from app.db.models import ExceptionCase
from app.memory.embeddings import EmbeddingError
from app.memory.schemas import SimilarCases, SimilarHit
from app.memory.service import MemoryUnavailable
from app.memory.store import ModelChanged
from graph.memory import MemoryFilters, case_document, case_fields
from packs.common import Severity

router = APIRouter(prefix="/exceptions", tags=["exceptions"])


def query_of(case: ExceptionCase) -> str:
    """The text a case is searched by: its canonical record's fields, without its own outcome."""
    record = dict(case.record or case.raw)
    record.setdefault("exceptionType", case.exception_type)
    record.setdefault("severity", case.severity)
    return case_document(case_fields(record))


@router.get("/{tenantId}/{exceptionId}/similar", response_model=SimilarCases,
            responses=responses(401, 403, 404, 409, 429, 503))  # fmt: skip
async def similar_cases(
    tenantId: str,
    exceptionId: str,
    principal: Viewer,
    services: ServicesDep,
    k: Annotated[int, Query(ge=1, le=50, description="How many cases")] = 5,
    type: Annotated[str | None, Query(max_length=200, description="Only this exception type")] = None,
    severity: Annotated[Severity | None, Query(description="Only this severity")] = None,
    outcome: Annotated[str | None, Query(max_length=40, description="Only this final status")] = None,
    finishedFrom: Annotated[UtcDatetime | None, Query(description="Finished at or after")] = None,
    finishedTo: Annotated[UtcDatetime | None, Query(description="Finished at or before")] = None,
) -> SimilarCases:
    """The tenant's past cases most like this one: vector and keyword search fused by rank, each with
    why it matched (scores, ranks, the words and fields in common). Same tenant only, always."""
    async with services.db.session() as session:
        case = await session.get(ExceptionCase, (tenantId, exceptionId))
    if case is None:  # first: an id nobody has is answered alike, memory on or off
        raise ProblemError(404, f"no exception {exceptionId}")
    memory = services.runtime.memory
    if memory is None:
        raise ProblemError(409, "similar-case memory is off on this server (EXOPS_MEMORY_ENABLED)")
    filters: MemoryFilters = {}
    if type is not None:
        filters["exceptionType"] = type
    if severity is not None:
        filters["severity"] = severity
    if outcome is not None:
        filters["outcome"] = outcome
    if finishedFrom is not None:
        filters["since"] = finishedFrom.timestamp()
    if finishedTo is not None:
        filters["until"] = finishedTo.timestamp()
    try:
        found = await memory.search(tenantId, query_of(case), filters=filters, k=k, exclude={exceptionId})
    except (MemoryUnavailable, ModelChanged) as exc:
        raise ProblemError(409, str(exc)) from None
    except EmbeddingError as exc:
        raise ProblemError(503, f"similar-case memory unavailable: {exc}") from None
    return SimilarCases(tenantId=tenantId, exceptionId=exceptionId, items=[SimilarHit.of(c) for c in found])
