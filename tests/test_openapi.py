"""The OpenAPI document describes every route: a success response with a schema, the problem responses
a caller can get, and request bodies that refuse unknown fields. It loops over whatever routes the app
has, so routes added later are held to the same rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.api_helpers import Api

SKIP = {"/health", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
METHODS = {"get", "post", "put", "patch", "delete"}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        if path in SKIP:
            continue
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def schemas_of(response: dict[str, Any]) -> list[Any]:
    return [media.get("schema") for media in (response.get("content") or {}).values()]


def refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` inside a schema fragment."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def models_in(schema: Any, components: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The component schemas (pydantic models) a request body uses, nested ones included."""
    found: dict[str, dict[str, Any]] = {}
    todo = list(refs(schema))
    while todo:
        name = todo.pop().rsplit("/", 1)[-1]
        if name in found:
            continue
        found[name] = components[name]
        todo.extend(refs(components[name]))
    return found


async def openapi(api: Api) -> dict[str, Any]:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


async def test_every_operation_has_a_success_response_with_a_schema(api: Api) -> None:
    document = await openapi(api)
    seen = list(operations(document))
    assert len(seen) >= 14  # the routes of issue 4 at least
    for method, path, operation in seen:
        success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert success, f"{method} {path}: no 2xx response"
        for code, response in success.items():
            if code == "204":
                continue
            assert any(schemas_of(response)), f"{method} {path}: {code} has no schema"
        assert operation.get("summary") or operation.get("description"), f"{method} {path}: undescribed"


async def test_problem_responses_are_documented(api: Api) -> None:
    document = await openapi(api)
    for method, path, operation in operations(document):
        responses = operation["responses"]
        headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
        authenticated = bool({"x-api-key", "authorization"} & headers) or bool(operation.get("security"))
        if authenticated:
            for code in ("401", "403"):
                assert code in responses, f"{method} {path}: {code} not documented"
        if "requestBody" in operation:
            assert "422" in responses, f"{method} {path}: takes a body but documents no 422"
        for code, response in responses.items():
            # 422: on routes that do not list it, FastAPI documents its own validation schema
            if code[0] in "45" and code != "422":
                assert any(s and s.get("$ref", "").endswith("/Problem") for s in schemas_of(response)), (
                    f"{method} {path}: {code} is not documented as problem details"
                )


async def test_request_bodies_refuse_unknown_fields(api: Api) -> None:
    document = await openapi(api)
    components = document["components"]["schemas"]
    bodies = 0
    for method, path, operation in operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        bodies += 1
        for media in body["content"].values():
            for name, model in models_in(media.get("schema"), components).items():
                if model.get("type") == "object" and "properties" in model:
                    assert model.get("additionalProperties") is False, (
                        f"{method} {path}: model {name} accepts unknown fields"
                    )
    assert bodies >= 5


async def test_the_documented_routes_include_playbooks_metrics_and_run(api: Api) -> None:
    paths = (await openapi(api))["paths"]
    for path in (
        "/exceptions/{tenantId}/{exceptionId}/playbook",
        "/exceptions/{tenantId}/{exceptionId}/playbook/steps/{stepOrder}/complete",
        "/exceptions/{tenantId}/{exceptionId}/playbook/steps/{stepOrder}/skip",
        "/exceptions/{tenantId}/{exceptionId}/playbook/recalculate",
        "/metrics/{tenantId}",
        "/run",
    ):
        assert path in paths, path
    assert "nothing is stored" in " ".join(paths["/run"]["post"]["description"].replace("*", "").split())
    metrics = (await openapi(api))["components"]["schemas"]["Metrics"]["properties"]
    assert all(field.get("description") for field in metrics.values())


async def test_every_documented_422_is_a_problem(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            invalid = operation.get("responses", {}).get("422")
            if invalid is not None:
                schema = invalid["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]
