"""Request limits: body size (413), JSON nesting (400), and a token bucket per tenant (429 with Retry-After),
shared by every API process in leases (``RateLimiter``)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

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


class BucketStore(Protocol):
    """Where the token buckets live: this process (``MemoryBuckets``) or the database, shared by
    every process (``app/shared/buckets.py``)."""

    async def lease(
        self, key: str, *, want: float, returned: float, capacity: float, rate: float, now: float
    ) -> tuple[float, float]:
        """Give back ``returned`` tokens, refill ``key``'s bucket up to ``now`` (``rate`` per second,
        at most ``capacity``) and take up to ``want`` (less when fewer are left, none below one).
        Returns the tokens granted and those left in the bucket."""
        ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class MemoryBuckets:
    """Buckets in this process alone (one process, or a test)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    async def lease(
        self, key: str, *, want: float, returned: float, capacity: float, rate: float, now: float
    ) -> tuple[float, float]:
        bucket = self._buckets.setdefault(key, _Bucket(capacity, now))
        elapsed = max(0.0, now - bucket.updated)
        available = min(capacity, bucket.tokens + elapsed * rate + returned)
        granted = want if available >= want else (available if available >= 1 else 0.0)
        bucket.tokens, bucket.updated = available - granted, max(now, bucket.updated)
        return granted, bucket.tokens


@dataclass
class _Lease:
    tokens: float = 0.0
    expires: float = 0.0
    blocked_until: float = 0.0
    renewing: asyncio.Lock = field(default_factory=asyncio.Lock)


LEASE_SECONDS = 1.0
"""How long a process may spend a lease before it gives the rest back with its next renewal."""


class RateLimiter:
    """``per_minute`` requests per key (a tenant), refilled continuously, in one bucket for all processes.

    Asking the shared bucket on every request would add a database write to each: instead a process
    takes a lease of up to one second's refill (at least 1 token, at most a tenth of the capacity) and
    spends it locally for at most ``LEASE_SECONDS``; the next renewal gives back what is left. So the
    budget is never exceeded (a token is spent only once it was taken from the shared bucket), and a
    process holds at most one lease of budget the others cannot use, for at most a second: a burst may
    be cut that much short, the sustained rate never. A refusal is remembered until the bucket will
    have refilled a token, so a flood of refused requests costs no writes either.
    """

    def __init__(
        self,
        per_minute: int,
        store: BucketStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.lease_size = float(max(1, min(per_minute // 10, math.ceil(self.rate))))
        self.lease_seconds = lease_seconds
        self.store: BucketStore = store if store is not None else MemoryBuckets()
        self.clock = clock
        self._leases: dict[str, _Lease] = {}

    def _spend(self, lease: _Lease, now: float) -> float | None:
        """0 when the lease pays for the request, the wait while refused, None to renew."""
        if lease.tokens >= 1 and now < lease.expires:
            lease.tokens -= 1
            return 0.0
        if now < lease.blocked_until:
            return lease.blocked_until - now
        return None

    async def take(self, key: str) -> float:
        """0 when allowed, else the seconds until a request would be."""
        lease = self._leases.get(key)
        if lease is None:
            lease = self._leases[key] = _Lease()
        verdict = self._spend(lease, self.clock())
        if verdict is not None:
            return verdict
        async with lease.renewing:  # one renewal at a time; the others then spend what it brought
            now = self.clock()
            verdict = self._spend(lease, now)
            if verdict is not None:
                return verdict
            returned, lease.tokens = lease.tokens, 0.0
            granted, left = await self.store.lease(
                key, want=self.lease_size, returned=returned, capacity=self.capacity, rate=self.rate, now=now
            )
            if granted >= 1:
                lease.tokens, lease.expires = granted - 1, now + self.lease_seconds
                return 0.0
            wait = (1 - left) / self.rate
            lease.blocked_until = now + wait
            return wait


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
