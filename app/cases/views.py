"""Routes for cases: ingest, list, read one, read its timeline."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, status
from pydantic import ValidationError, WithJsonSchema

from app.api.deps import Operator, ServicesDep, Viewer
from app.api.openapi import component_ref
from app.api.params import Offset, UtcDatetime
from app.api.problems import FieldProblem, ProblemError, field_path, responses
from app.cases.queries import audit_trail, event_view, events, filtered, page, summary
from app.cases.record import result_of
from app.cases.schemas import Accepted, CaseDetail, CasePage, EventPage
from app.db.models import ExceptionCase, PlaybookState
from graph.inputs import RawException

router = APIRouter(prefix="/exceptions", tags=["exceptions"])
MAX_IDEMPOTENCY_KEY = 200
EXAMPLE = {"exceptionId": "GLX-1001", "exceptionType": "SETTLEMENT_FAIL", "sourceSystem": "murex",
           "rawPayload": {"tradeId": "T-1", "settlementAmount": 62000}}  # fmt: skip
OneOrMany = Annotated[
    dict[str, object] | list[dict[str, object]],
    WithJsonSchema({"anyOf": [component_ref(RawException),
                              {"type": "array", "items": component_ref(RawException), "minItems": 1}]}),
]  # fmt: skip
"""Read as plain JSON so that ``parse_items`` reports every item's problems with its index; documented
as what it accepts: one exception, or a non-empty list of them."""


def parse_items(
    body: dict[str, object] | list[dict[str, object]], tenant_id: str, limit: int
) -> list[RawException]:
    """One exception or a list; every problem of every item reported with its path."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise ProblemError(
            422, "no exceptions in the request", errors=[FieldProblem(path="body", message="empty list")]
        )
    if len(items) > limit:
        raise ProblemError(413, f"{len(items)} exceptions in one request; the limit is {limit}")
    parsed, problems = [], []
    for index, item in enumerate(items):
        prefix: list[str | int] = ["body", index] if isinstance(body, list) else ["body"]
        try:
            raw = RawException.model_validate(item)
        except ValidationError as exc:
            problems += [
                FieldProblem(path=field_path([*prefix, *e["loc"]]), message=e["msg"]) for e in exc.errors()
            ]
            continue
        if raw.tenantId not in (None, tenant_id):
            problems.append(
                FieldProblem(
                    path=field_path([*prefix, "tenantId"]),
                    message=f"does not match the path tenant {tenant_id}",
                )
            )
        parsed.append(raw)
    if problems:
        raise ProblemError(422, f"{len(problems)} invalid field(s); nothing was accepted", errors=problems)
    return parsed


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=f"1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters; a retry with the same key "
            "answers the first request's ids",
        ),
    ] = None,
) -> str | None:
    """The header as given, or a 400 naming it: an empty key would make every keyless retry one. Async
    although it awaits nothing: FastAPI sends a plain ``def`` dependency to its thread pool on every
    request (a tenth of an ingest request's CPU)."""
    if key is None:
        return None
    if not key.strip():
        problem = "must not be empty"
    elif len(key) > MAX_IDEMPOTENCY_KEY:
        problem = f"must be at most {MAX_IDEMPOTENCY_KEY} characters"
    elif not (key.isascii() and key.isprintable()):
        problem = "must be printable ASCII characters"
    else:
        return key
    raise ProblemError(
        400,
        f"invalid Idempotency-Key header: it {problem}",
        errors=[FieldProblem(path="header.Idempotency-Key", message=problem)],
    )


@router.post("/{tenantId}", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted,
             responses=responses(400, 401, 403, 404, 409, 413, 422, 429))  # fmt: skip
async def ingest(
    tenantId: str,
    principal: Operator,
    services: ServicesDep,
    body: Annotated[OneOrMany, Body(examples=[EXAMPLE])],
    idempotency_key: Annotated[str | None, Depends(idempotency_key)],
) -> Accepted:
    """Accept one exception or a list; they are stored, then processed in the background."""
    if services.store.tenant(tenantId) is None:
        raise ProblemError(409, f"tenant {tenantId} has no active policy pack: upload or activate one first")
    items = parse_items(body, tenantId, services.settings.max_batch)
    ids, _ = await services.cases.ingest(
        tenantId, items, idempotency_key=idempotency_key, actor=principal.actor
    )
    return Accepted(exceptionIds=ids)


RECEIVED_DESCRIPTION = "RFC 3339 date-time, e.g. 2026-01-31T09:30:00Z; without an offset it is read as UTC"


@router.get("/{tenantId}", response_model=CasePage, responses=responses(401, 403, 404, 429))
async def list_cases(
    tenantId: str,
    principal: Viewer,
    services: ServicesDep,
    status: Annotated[str | None, Query(description="One or more statuses, comma separated")] = None,
    severity: Annotated[str | None, Query(description="One or more severities, comma separated")] = None,
    type: Annotated[str | None, Query(description="Exception type")] = None,
    text: Annotated[
        str | None, Query(max_length=200, description="Search id, type, source and summary")
    ] = None,
    receivedFrom: Annotated[UtcDatetime | None, Query(description=RECEIVED_DESCRIPTION)] = None,
    receivedTo: Annotated[UtcDatetime | None, Query(description=RECEIVED_DESCRIPTION)] = None,
    sort: Annotated[
        Literal[
            "receivedAt",
            "-receivedAt",
            "updatedAt",
            "-updatedAt",
            "severity",
            "-severity",
            "status",
            "-status",
            "exceptionType",
            "-exceptionType",
        ],
        Query(),
    ] = "-receivedAt",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> CasePage:
    query = filtered(tenantId, status=status, severity=severity, exception_type=type, text=text,
                     received_from=receivedFrom, received_to=receivedTo)  # fmt: skip
    async with services.db.session() as session:
        rows, total, counts = await page(session, query, sort=sort, limit=limit, offset=offset)
    return CasePage(
        items=[summary(r) for r in rows], total=total, limit=limit, offset=offset, countsByStatus=counts
    )


@router.get("/{tenantId}/{exceptionId}", response_model=CaseDetail, responses=responses(401, 403, 404, 429))
async def get_case(tenantId: str, exceptionId: str, principal: Viewer, services: ServicesDep) -> CaseDetail:
    async with services.db.session() as session:
        case = await session.get(ExceptionCase, (tenantId, exceptionId))
        if case is None:
            raise ProblemError(404, f"no exception {exceptionId}")
        rows, _ = await events(session, tenantId, exceptionId, limit=100_000)
        playbook = await session.get(PlaybookState, (tenantId, exceptionId))
    record = dict(
        case.record
        or {
            "exceptionId": case.exception_id,
            "tenantId": tenantId,
            "rawPayload": case.raw.get("rawPayload", {}),
        }
    )
    record["resolutionStatus"] = case.status
    record["auditTrail"] = audit_trail(rows)
    result = result_of(case, [row.data for row in rows if row.type == "stage_decision"], playbook)
    return CaseDetail(exceptionId=exceptionId, tenantId=tenantId, resolutionStatus=case.status,
                      processing=case.processing, record=record, decisions=(result or {}).get("stages", []),
                      result=result)  # fmt: skip


@router.get(
    "/{tenantId}/{exceptionId}/events", response_model=EventPage, responses=responses(401, 403, 404, 429)
)
async def list_events(
    tenantId: str,
    exceptionId: str,
    principal: Viewer,
    services: ServicesDep,
    type: Annotated[list[str] | None, Query(description="Event types to keep")] = None,
    stage: Annotated[str | None, Query()] = None,
    actorType: Annotated[Literal["agent", "human", "system"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> EventPage:
    async with services.db.session() as session:
        if await session.get(ExceptionCase, (tenantId, exceptionId)) is None:
            raise ProblemError(404, f"no exception {exceptionId}")
        rows, total = await events(session, tenantId, exceptionId, types=type, stage=stage, actor_type=actorType,
                                   limit=limit, offset=offset)  # fmt: skip
    return EventPage(items=[event_view(r) for r in rows], total=total, limit=limit, offset=offset)
