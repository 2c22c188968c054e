"""Errors in one shape: RFC 9457 problem details, with the field path of every validation error."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

Call = TypeVar("Call", bound=Callable[..., Any])
PROBLEM_TYPE = "https://exops.dev/problems/"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal error",
}


class FieldProblem(BaseModel):
    path: str = Field(description="Where in the request, e.g. body[2].severity")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] = Field(default_factory=list)


class ProblemError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[FieldProblem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}


def field_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problem_response(request: Request, status: int, detail: str, errors: Sequence[FieldProblem] = (),
                     headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    slug = TITLES.get(status, "Error").lower().replace(" ", "-")
    body = Problem(type=PROBLEM_TYPE + slug, title=TITLES.get(status, "Error"), status=status, detail=detail,
                   instance=str(request.url.path), errors=list(errors))  # fmt: skip
    return JSONResponse(
        body.model_dump(), status_code=status, media_type="application/problem+json", headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldProblem(path=field_path(e["loc"]), message=e["msg"]) for e in exc.errors()]
        return problem_response(request, 422, f"{len(errors)} invalid field(s)", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(request, exc.status_code, str(exc.detail), headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path. Starlette's 405 names only the methods
    of the first route whose path matched, so ``GET /exceptions/{tenantId}`` was refused for a
    ``PUT`` with ``Allow: POST`` although the path answers ``GET`` too (RFC 9110 wants them all)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):  # included routers' routes one by one
        match, _scope = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(route.methods or ())
    order = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    return sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m))


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route gives itself (its own 404, 409...); the
    document gives each its problem content (``app/api/openapi.py``)."""
    return {status: {"description": TITLES.get(status, "Error")} for status in statuses}


_STATUSES = "__problem_statuses__"


def raises(*statuses: int) -> Callable[[Call], Call]:
    """Mark a dependency with the problem statuses it answers: every route using it documents them."""

    def mark(call: Call) -> Call:
        setattr(call, _STATUSES, frozenset(statuses))
        return call

    return mark


def problem_statuses(call: Any) -> frozenset[int]:
    """The statuses ``raises`` marked ``call`` with (none when unmarked)."""
    found: frozenset[int] = getattr(call, _STATUSES, frozenset())
    return found
