"""Validating tool arguments and describing the HTTP request a tool call makes."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from packs.domain import ToolDefinition

REDACTED = "***"


def argument_errors(tool: ToolDefinition, arguments: dict[str, Any]) -> list[str]:
    """Every way ``arguments`` break the tool's parameter schema, as ``path: message`` lines."""
    validator = Draft202012Validator(tool.parameters)
    errors = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path)):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        errors.append(f"arguments{path}: {error.message}")
    return errors


def describe_request(
    call_tool: ToolDefinition, arguments: dict[str, Any], idempotency_key: str
) -> dict[str, Any]:
    """The request as it would go on the wire, with the secret itself never included."""
    headers: dict[str, str] = {"Content-Type": "application/json"}
    if call_tool.mutating:
        headers["Idempotency-Key"] = idempotency_key
    auth = call_tool.auth
    if auth.kind == "api_key":
        headers[auth.header] = f"<secret {auth.secretRef}>"
    elif auth.kind == "bearer":
        headers["Authorization"] = f"Bearer <secret {auth.secretRef}>"
    elif auth.kind == "basic":
        headers["Authorization"] = f"Basic <secret {auth.secretRef}>"
    request: dict[str, Any] = {"method": call_tool.method, "url": call_tool.endpoint, "headers": headers}
    if call_tool.method in ("GET", "DELETE"):
        request["params"] = arguments
    else:
        request["json"] = arguments
    return request
