"""Validating tool arguments, describing the HTTP request a tool call makes, reading its reply.

The dry-run and live executors share these so that a dry run records exactly the request a live
run would send (same headers, same placement of the arguments), minus the secret itself.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from packs.domain import ToolAuth, ToolDefinition
from tools.executor import RegisteredTool
from tools.redaction import REDACTED, redact

__all__ = [
    "REDACTED",
    "argument_errors",
    "auth_header",
    "base_headers",
    "describe_request",
    "output_errors",
    "reply_body",
    "retry_after",
    "sends_body",
]


def _schema_errors(schema: dict[str, Any], instance: Any, root: str) -> list[str]:
    validator = Draft202012Validator(schema)
    errors = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        errors.append(f"{root}{path}: {error.message}")
    return errors


def argument_errors(definition: ToolDefinition, arguments: dict[str, Any]) -> list[str]:
    """Every way ``arguments`` break the tool's parameter schema, as ``arguments.path: message`` lines."""
    return _schema_errors(definition.parameters, arguments, "arguments")


def output_errors(definition: ToolDefinition, body: Any) -> list[str]:
    """Every way a reply body breaks the tool's ``outputSchema`` (none when it declares no schema)."""
    if definition.outputSchema is None:
        return []
    return _schema_errors(definition.outputSchema, body, "reply")


BODY_TEXT_LIMIT = 2000


def reply_body(response: httpx.Response) -> Any:
    """The parsed JSON of a reply, or (not JSON) its first ``BODY_TEXT_LIMIT`` characters."""
    try:
        return response.json()
    except ValueError:
        return response.text[:BODY_TEXT_LIMIT]


def retry_after(response: httpx.Response) -> float | None:
    """A numeric ``Retry-After`` header in seconds; an HTTP date or garbage gives None."""
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def sends_body(definition: ToolDefinition) -> bool:
    """GET and DELETE carry the arguments as query parameters, the other methods as a JSON body."""
    return definition.method not in ("GET", "DELETE")


def base_headers(tool: RegisteredTool, idempotency_key: str) -> dict[str, str]:
    """The headers of a call apart from authentication.

    Every state-changing call carries the same ``Idempotency-Key`` on each attempt, so a tool that
    honours it applies a retried call once.
    """
    headers = {"Accept": "application/json"}
    if sends_body(tool.definition):
        headers["Content-Type"] = "application/json"
    if tool.state_changing:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def auth_header(auth: ToolAuth, credential: str) -> tuple[str, str] | None:
    """The header carrying ``credential`` for the tool's auth kind (None when it has no auth).

    For ``basic`` the credential is used as given: the secret holds the encoded ``user:password``.
    """
    if auth.kind == "api_key":
        return auth.header, credential
    if auth.kind == "bearer":
        return "Authorization", f"Bearer {credential}"
    if auth.kind == "basic":
        return "Authorization", f"Basic {credential}"
    return None


def describe_request(tool: RegisteredTool, arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """The request as it goes on the wire, fit for the audit trail: the credential is a
    ``<secret REF>`` placeholder and arguments are redacted with the tenant's fields."""
    definition = tool.definition
    headers = base_headers(tool, idempotency_key)
    auth = auth_header(definition.auth, f"<secret {definition.auth.secretRef}>")
    if auth is not None:
        headers[auth[0]] = auth[1]
    request: dict[str, Any] = {"method": definition.method, "url": definition.endpoint, "headers": headers}
    shown = redact(arguments, tool.redact_fields)
    request["json" if sends_body(definition) else "params"] = shown
    return request
