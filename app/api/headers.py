"""Security headers on every response: the browser may run only this server's own files.

The policy holds for the UI, ``/docs`` and the API alike (one rule, no page forgotten):

* ``Content-Security-Policy``: scripts, styles, fonts and fetches from this origin only, no inline
  script or style (the UI keeps none: ``app/ui/static/``), images also as ``data:`` URLs (Swagger
  UI's icons); no plugins, no ``<base>``, forms post only here, and no other site may frame a page;
* ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``;
* ``Referrer-Policy: no-referrer``: a URL (tenant, case ids) never leaks to another site;
* ``X-Content-Type-Options: nosniff``: a response is only ever what its Content-Type says.

A response that sets one of these itself keeps its own value.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
