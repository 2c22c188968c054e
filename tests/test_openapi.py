"""The OpenAPI document describes every route: a success response with a schema, the problem responses
a caller can get, and request bodies that refuse unknown fields. It loops over whatever routes the app
has, so routes added later are held to the same rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema

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


PROBLEM_REF = "#/components/schemas/Problem"


def _tenant_scoped(operation: dict[str, Any]) -> bool:
    return any(p["in"] == "path" and p["name"] == "tenantId" for p in operation.get("parameters", []))


async def test_every_documented_error_is_problem_json_and_nothing_else(api: Api) -> None:
    """The server answers every error as ``application/problem+json``; the document says exactly that."""
    document = await openapi(api)
    for method, path, operation in operations(document):
        for code, response in operation["responses"].items():
            if code[0] in "45":
                assert response.get("content") == {
                    "application/problem+json": {"schema": {"$ref": PROBLEM_REF}}
                }, f"{method} {path}: {code} is documented as {list(response.get('content') or {})}"


async def test_every_operation_with_a_body_documents_400_413_415_and_422(api: Api) -> None:
    """400: the body cannot be read (not UTF-8 JSON, too deep); 413: over the size limit; 415: a media
    type the operation does not take; 422: invalid."""
    document = await openapi(api)
    for method, path, operation in operations(document):
        if "requestBody" in operation:
            for code in ("400", "413", "415", "422"):
                assert code in operation["responses"], (
                    f"{method} {path}: takes a body but documents no {code}"
                )


async def test_tenant_routes_document_404_and_429_and_only_they_document_429(api: Api) -> None:
    """A tenant route answers 404 for an unknown tenant and 429 when the tenant's rate limit is spent;
    platform routes have no tenant and no rate limit (``/run`` checks the tenant of its body)."""
    document = await openapi(api)
    for method, path, operation in operations(document):
        responses = operation["responses"]
        if _tenant_scoped(operation) or path == "/run":
            assert {"404", "429"} <= set(responses), f"{method} {path}: 404/429 not documented"
        else:
            assert "429" not in responses, f"{method} {path}: documents a 429 it never answers"


async def test_401_and_429_document_their_headers(api: Api) -> None:
    document = await openapi(api)
    for method, path, operation in operations(document):
        responses = operation["responses"]
        if "401" in responses:
            assert "WWW-Authenticate" in responses["401"].get("headers", {}), f"{method} {path}"
        if "429" in responses:
            assert "Retry-After" in responses["429"].get("headers", {}), f"{method} {path}"


async def test_every_reference_resolves(api: Api) -> None:
    document = await openapi(api)
    components = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[-1] in components, ref


async def test_pack_uploads_are_typed_with_the_pack_schemas_for_every_accepted_media_type(api: Api) -> None:
    document = await openapi(api)
    expected = {"application/json", "application/yaml", "application/x-yaml", "text/yaml"}
    for path, model in (
        ("/admin/domain-packs", "DomainPack"),
        ("/admin/domain-packs/validate", "DomainPack"),
        ("/admin/{tenantId}/policy", "TenantPolicyPack"),
        ("/admin/{tenantId}/policy/validate", "TenantPolicyPack"),
    ):
        body = document["paths"][path]["post"]["requestBody"]
        assert set(body["content"]) == expected, path
        for media in body["content"].values():
            assert media["schema"] == {"$ref": f"#/components/schemas/{model}"}, path
    domain = document["components"]["schemas"]["DomainPack"]
    assert {"domainName", "exceptionTypes"} <= set(domain["required"])
    assert "tenantId" in document["components"]["schemas"]["TenantPolicyPack"]["required"]


PROBES: list[Any] = [[], {}, [{}], "text", 0, None]
"""Bodies of every shape: the documented schema and the server must agree on each."""


def _filled(path: str, operation: dict[str, Any]) -> str:
    values = {"tenantId": "globex-markets", "stepOrder": "1"}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            name = parameter["name"]
            path = path.replace("{" + name + "}", values.get(name, "no-such-thing"))
    return path


async def test_the_documented_body_schema_accepts_exactly_what_the_server_accepts(api: Api) -> None:
    """For each probe body: the schema refuses it exactly when the server refuses it as invalid
    (400/422); a body the schema allows is never refused as malformed (an empty list was)."""
    document = await openapi(api)
    checked = 0
    for method, path, operation in operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        schema = body["content"]["application/json"]["schema"]
        validator = jsonschema.Draft202012Validator({**schema, "components": document["components"]})
        url = _filled(path, operation)
        for probe in PROBES:
            response = await api.client.request(
                method, url, content=json.dumps(probe).encode(),
                headers={**api.as_("platform_admin"), "Content-Type": "application/json"},
            )  # fmt: skip
            allowed = validator.is_valid(probe)
            refused = response.status_code in (400, 422)
            assert allowed != refused, (
                f"{method} {path} with {json.dumps(probe)}: the schema {'allows' if allowed else 'refuses'} it, "
                f"the server answered {response.status_code} {response.text[:300]}"
            )
            checked += 1
    assert checked >= 12 * len(PROBES)
