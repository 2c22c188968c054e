"""Circuit breakers, one per tool key (``tenant/domain/tool``), shared by every run of the process.

When a tenant's system is down, every playbook step that calls it would otherwise wait out its
timeouts and retries, piling load on a system trying to recover. After ``failure_threshold``
consecutive failures the breaker *opens*: calls are refused at once, without a request. Once
``reset_seconds`` have passed it is *half-open*: exactly one trial call goes through at a time
(concurrent callers are still refused); its success closes the breaker, its failure opens it again
for another ``reset_seconds``.

The state is derived lazily from the clock, so nothing runs in the background. Everything normally
happens on one asyncio loop, but the board is process-wide, so each breaker guards its state with a
lock anyway (the critical sections never await).

Several processes (API servers, workers) call the same tools, so a board can have *peers*
(``BreakerPeers``; the server's are ``app/shared/breakers.py``, over the database). The board stays
the fast local view every call reads; each change a call makes (a failure, a success that closes, a
released trial, an admin's reset) is handed to the peers, which publish it, and the peers bring the
others' changes back with ``BreakerBoard.apply``. A half-open trial is claimed from the peers too
(``claim_trial``), so one trial goes out across all processes, not one per process. This module
knows nothing about how the peers store it: the tools layer imports no database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from tools.executor import BreakerState


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BreakerSnapshot:
    """A breaker's state for the admin API and the audit trail (times as ISO 8601 strings)."""

    key: str
    state: BreakerState
    consecutiveFailures: int
    openedAt: str | None
    retryAt: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


BreakerEvent = Literal["failure", "success", "release", "reset"]
"""A local change peers hear about: a failed call, a success that closed the breaker (or cleared its
failures), a half-open trial ended without a verdict, an admin's reset."""


@dataclass(frozen=True)
class SharedBreaker:
    """A breaker as the peers hold it: consecutive failures, and when it (last) opened."""

    failures: int
    opened_at: datetime | None


class BreakerPeers(Protocol):
    """The other processes sharing a board's breakers.

    ``publish`` is called synchronously after each local change and must not block (queue it);
    ``claim_trial`` asks whether this process may send the half-open trial call for ``key``
    (true when no other process holds it), holding it for at most ``lease_seconds``."""

    def publish(self, key: str, event: BreakerEvent, at: datetime) -> None: ...

    async def claim_trial(self, key: str, lease_seconds: float) -> bool: ...


Notify = Callable[[str, BreakerEvent, datetime], None]


class CircuitBreaker:
    """The breaker of one tool key; get it from ``BreakerBoard.breaker``.

    Protocol for a call: ``allow()`` first (False → do not send); then exactly one of
    ``record_success()``, ``record_failure()`` or ``release()`` (the call said nothing about the
    tool's health, or was never sent). A granted half-open trial stays reserved until one of them.
    """

    def __init__(
        self,
        key: str,
        *,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
        notify: Notify | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_seconds < 0:
            raise ValueError("reset_seconds must not be negative")
        self.key = key
        self._threshold = failure_threshold
        self._reset_seconds = reset_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None  # clock() when it last opened; None while closed
        self._opened_wall: datetime | None = None
        self._trial_running = False
        self._notify = notify

    def _tell(self, event: BreakerEvent, at: datetime | None = None) -> None:
        """Hand a change to the peers; called outside the lock (a peer may take its own)."""
        if self._notify is not None:
            self._notify(self.key, event, at or self._wall_clock())

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self._reset_seconds:
            return "open"
        return "half_open"

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    @property
    def trial_running(self) -> bool:
        """Whether a half-open trial call is under way (other callers are refused meanwhile)."""
        with self._lock:
            return self._trial_running

    def allow(self) -> bool:
        """Whether a call may be sent now; in half-open state this reserves the single trial."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "open" or self._trial_running:
                return False
            self._trial_running = True
            return True

    def record_success(self) -> None:
        """The tool answered as a healthy tool does: close the breaker and forget past failures.
        Peers hear of it only when it changed something (a healthy tool costs them nothing)."""
        with self._lock:
            changed = self._failures > 0 or self._opened_at is not None or self._trial_running
            self._close()
        if changed:
            self._tell("success")

    def _close(self) -> None:
        self._failures = 0
        self._opened_at = self._opened_wall = None
        self._trial_running = False

    def record_failure(self) -> None:
        """The tool failed (5xx, 408/429, timeout, unreachable, bad reply)."""
        at = self._wall_clock()
        with self._lock:
            self._failures += 1
            state = self._state()
            if state == "half_open" or (state == "closed" and self._failures >= self._threshold):
                self._opened_at = self._clock()
                self._opened_wall = at
            # Already open (a call that started earlier failing late): keep the running timer.
            self._trial_running = False
        self._tell("failure", at)

    def release(self, *, publish: bool = True) -> None:
        """End a call without a verdict; frees the half-open trial for the next caller.
        ``publish=False``: the trial was only reserved here, never claimed from the peers."""
        with self._lock:
            held = self._trial_running
            self._trial_running = False
        if held and publish:
            self._tell("release")

    def reset(self) -> None:
        """Close the breaker by hand (an operator knows the tool is back), in every process."""
        with self._lock:
            self._close()
        self._tell("reset")

    def apply(self, shared: SharedBreaker) -> None:
        """Take the state the peers hold (failures, when it opened). A half-open trial this process
        reserved stays reserved while the breaker is still not closed."""
        with self._lock:
            self._failures = shared.failures
            if shared.opened_at is None:
                self._opened_at = self._opened_wall = None
                self._trial_running = False
                return
            if shared.opened_at != self._opened_wall:
                age = max(0.0, (self._wall_clock() - shared.opened_at).total_seconds())
                self._opened_at = self._clock() - age
                self._opened_wall = shared.opened_at

    def refusal(self) -> str:
        """Why ``allow()`` refuses (for the audit trail), e.g. "circuit open for KEY until <retryAt>"."""
        snap = self.snapshot()
        if snap.state == "half_open":
            return f"circuit half-open for {self.key}: a trial call is already in flight"
        return f"circuit open for {self.key} until {snap.retryAt}"

    def snapshot(self) -> BreakerSnapshot:
        with self._lock:
            opened_at = retry_at = None
            if self._opened_wall is not None:
                opened_at = self._opened_wall.isoformat()
                retry_at = (self._opened_wall + timedelta(seconds=self._reset_seconds)).isoformat()
            return BreakerSnapshot(self.key, self._state(), self._failures, opened_at, retry_at)


class BreakerBoard:
    """All breakers of the process, created on first use with the board's settings."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utc_now,
        peers: BreakerPeers | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._peers = peers
        self._settings: dict[str, Any] = {
            "failure_threshold": failure_threshold,
            "reset_seconds": reset_seconds,
            "clock": clock,
            "wall_clock": wall_clock,
            "notify": peers.publish if peers is not None else None,
        }
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, key: str) -> CircuitBreaker:
        with self._lock:
            found = self._breakers.get(key)
            if found is None:
                found = self._breakers[key] = CircuitBreaker(key, **self._settings)
            return found

    def snapshot(self, key: str) -> BreakerSnapshot:
        """The state of ``key``'s breaker; a tool never called is simply closed."""
        with self._lock:
            found = self._breakers.get(key)
        if found is None:
            return BreakerSnapshot(key, "closed", 0, None, None)
        return found.snapshot()

    def snapshots(self, prefix: str = "") -> list[BreakerSnapshot]:
        """Every breaker whose key starts with ``prefix`` (e.g. ``"acme-capital/"``), sorted by key."""
        with self._lock:
            found = [self._breakers[k] for k in sorted(self._breakers) if k.startswith(prefix)]
        return [breaker.snapshot() for breaker in found]

    def reset(self, key: str) -> None:
        """Close ``key``'s breaker by hand (nothing to do for a key never used)."""
        with self._lock:
            found = self._breakers.get(key)
        if found is not None:
            found.reset()
        elif self._peers is not None:  # never used here, but maybe open elsewhere
            self.breaker(key).reset()

    async def claim_trial(self, key: str, lease_seconds: float) -> bool:
        """After ``allow()`` granted a half-open trial here: whether no other process holds it
        (always true without peers)."""
        if self._peers is None:
            return True
        return await self._peers.claim_trial(key, lease_seconds)

    def apply(self, shared: Mapping[str, SharedBreaker], *, skip: Collection[str] = ()) -> None:
        """Take the peers' view of every breaker: those in ``shared`` as given, every other one
        closed. ``skip`` names keys with local changes the peers have not heard of yet."""
        with self._lock:
            known = dict(self._breakers)
        for key, breaker in known.items():
            if key not in shared and key not in skip:
                breaker.apply(SharedBreaker(0, None))
        for key, state in shared.items():
            if key not in skip:
                self.breaker(key).apply(state)
