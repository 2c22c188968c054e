"""Request limits: body size (413), JSON nesting (400), and a token bucket per tenant (429 with Retry-After)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import PROBLEM_TYPE, TITLES, FieldProblem, Problem
from packs.jsonvalues import DEFAULT_MAX_DEPTH, nesting_problem


class BodyLimits:
    """Every request body is read whole before the app sees it, and refused when it breaks a limit.

    - Over ``max_bytes``: 413, whether announced by Content-Length or found while reading a chunked
      body (raising from inside the app instead made FastAPI answer 400, "error parsing the body").
    - A JSON body nested deeper than ``max_json_depth``, or holding NaN/Infinity: 400, before any
      parser recurses into it or stores a value JSON cannot hold (``packs.jsonvalues``).

    The app then reads the body from memory; it is at most ``max_bytes`` long.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_json_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.app = app
        self.limit = max_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await _refuse(scope, send, 413, f"request body over {self.limit} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _refuse(scope, send, 413, f"request body over {self.limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _is_json(headers.get(b"content-type", b"")):
            problem = _json_problem(body, self.max_json_depth)
            if problem is not None:
                await _refuse(scope, send, 400, f"the JSON body cannot be read: {problem}", problem)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # after the body, only the disconnect is left to wait for
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _is_json(content_type: bytes) -> bool:
    """FastAPI parses ``application/json`` and ``application/*+json`` bodies as JSON; so do we."""
    media = content_type.split(b";")[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def _json_problem(body: bytes, max_depth: int) -> str | None:
    try:
        text = body.decode(json.detect_encoding(body))
    except (UnicodeDecodeError, LookupError):
        return None  # not text: the parser refuses it with its own message
    return nesting_problem(text, max_depth)


async def _refuse(scope: Scope, send: Send, status: int, detail: str, field: str | None = None) -> None:
    errors = [FieldProblem(path="body", message=field)] if field is not None else []
    problem = Problem(
        type=PROBLEM_TYPE + TITLES[status].lower().replace(" ", "-"), title=TITLES[status], status=status,
        detail=detail, instance=scope.get("path"), errors=errors,
    )  # fmt: skip
    body = problem.model_dump_json().encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``per_minute`` requests per key, refilled continuously; ``take`` says how long to wait when empty."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """0 when allowed, else the seconds until a request would be."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.setdefault(key, _Bucket(self.capacity, now))
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
