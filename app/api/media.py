"""A request body in a media type its operation does not declare is refused with 415, on every route.

FastAPI reads a body as JSON only when it is sent as JSON: sent as ``text/plain``, a form or XML it
was taken for a missing body and answered 422 "Field required", telling the caller to fix a field it
had sent. The media types an operation declares come from its route, as the OpenAPI document shows
them: a model body declares ``application/json``; a raw upload declares the ``requestBody`` content
it lists (pack uploads: JSON and three YAML spellings). Parameters such as ``charset`` are not part
of the comparison. A body sent without a ``Content-Type`` is left to the route (a pack upload guesses
the format; a model body reads it as missing, 422).

Only documented operations are held to this: the UI's form posts are not in the document.
"""

from __future__ import annotations

from fastapi import Request, params
from fastapi.routing import APIRoute

from app.api.problems import FieldProblem, ProblemError

JSON = "application/json"


def declared_media_types(route: object) -> frozenset[str]:
    """The body media types a documented operation takes (none when it takes no body)."""
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return frozenset()
    raw = (route.openapi_extra or {}).get("requestBody")
    if raw is not None:
        return frozenset(raw.get("content", {}))
    body = route.body_field
    if body is None or isinstance(body.field_info, params.Form):
        return frozenset()
    return frozenset({JSON})


async def declared_media_type(request: Request) -> None:
    """An app-wide dependency; it runs after the body is read and before any field is validated."""
    declared = declared_media_types(request.scope.get("route"))
    content_type = request.headers.get("content-type")
    if not declared or not content_type:
        return
    media = content_type.split(";")[0].strip().lower()
    if media not in declared:
        takes = " or ".join(sorted(declared))
        raise ProblemError(
            415,
            f"this operation takes {takes}, not {media or 'an empty media type'}",
            errors=[FieldProblem(path="header.Content-Type", message=f"expected {takes}")],
        )
