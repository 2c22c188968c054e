"""The OpenAPI document made to say what the server does, by rules every route obeys.

FastAPI documents what a route declares; several answers come from elsewhere, so they are added here
from where they really come from, once for all routes:

* every error is a problem (``application/problem+json``, the ``Problem`` schema), whatever the route
  listed: that is how ``problems.install`` answers them all;
* a dependency marked with ``problems.raises`` (the credential check, the tenant check with its rate
  limit, the platform-admin check) adds its statuses to every route that uses it, so a route cannot
  forget a 401, 403, 404 or 429 it can give, nor list a 429 it never gives;
* every route that takes a body documents 400 (a body that cannot be read: not UTF-8, nested too
  deep), 413 (over ``EXOPS_MAX_BODY_BYTES``), 415 (a media type the route does not declare:
  ``app/api/media.py``) and 422 (invalid, with field paths);
* 401 carries ``WWW-Authenticate`` and 429 ``Retry-After``, as the server sends them;
* models that routes reference by hand (``component_ref``: a body read from the raw request, such as
  a pack upload, or a schema narrower than the Python type) are added to the components.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel

from app.api.problems import TITLES, FieldProblem, Problem, problem_statuses

COMPONENTS = "#/components/schemas/"
PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": f"{COMPONENTS}Problem"}}}
BODY_STATUSES = (400, 413, 415, 422)
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "The accepted schemes", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "string", "pattern": "^[0-9]+$"}}
    },
}


def component_ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to ``model``'s schema; pass the model to ``install`` so that it is there."""
    return {"$ref": COMPONENTS + model.__name__}


def _statuses(dependant: Dependant) -> set[int]:
    found = set(problem_statuses(dependant.call))
    for sub in dependant.dependencies:
        found |= _statuses(sub)
    return found


def route_statuses(route: APIRoute | RouteContext) -> set[int]:
    """The problem statuses a route can answer besides the ones it lists itself."""
    found = _statuses(route.dependant)
    if route.body_field is not None or "requestBody" in (route.openapi_extra or {}):
        found.update(BODY_STATUSES)
    return found


def _without_defaults(node: Any) -> Any:
    """A schema compared without ``default`` and ``title`` (FastAPI and pydantic differ only there)."""
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k not in ("default", "title")}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def add_models(components: dict[str, Any], models: Iterable[type[BaseModel]]) -> None:
    """Each model's schema and those it uses; a name already there must describe the same thing."""
    for model in models:
        schema = model.model_json_schema(ref_template=COMPONENTS + "{model}")
        for name, definition in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            present = components.setdefault(name, definition)
            if _without_defaults(present) != _without_defaults(definition):
                raise RuntimeError(f"two different schemas are both named {name} in the OpenAPI document")


def _document_problems(operation: dict[str, Any], derived: set[int]) -> None:
    responses = operation.setdefault("responses", {})
    for status in derived:
        responses.setdefault(str(status), {})
    for code, response in responses.items():
        if code[0] in "45":
            status = int(code)
            response["content"] = PROBLEM_CONTENT
            response.setdefault("description", TITLES.get(status, "Error"))
            if status in HEADERS:
                response["headers"] = HEADERS[status]


def install(app: FastAPI, models: Iterable[type[BaseModel]] = ()) -> None:
    build = app.openapi
    extra = tuple(models)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        add_models(components, (Problem, FieldProblem, *extra))
        paths = schema.get("paths", {})
        for route in iter_route_contexts(app.routes):
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            derived = route_statuses(route)
            for method in route.methods or ():
                operation = paths.get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    _document_problems(operation, derived)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
