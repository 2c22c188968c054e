"""Where a case's audit events go: an event sink in the run context, each event stored once.

Nodes do not keep the audit trail in the graph's state (it would be checkpointed again at every step).
They return their events, and the node wrapper (``graph.builder``) hands them to the run context's
sink together, as the node finishes, before LangGraph checkpoints the node's update. Each event has a
key that is the same whenever that node runs at that point of the case: ``stage:visit:n`` (the stage,
how many times the stage had completed before plus one, the event's position in the node's batch),
within the case's thread (tenant and exception id). So

* a node cut off after its events were stored, and run again on resume, hands over the same keys,
  and the sink stores nothing twice (the app's sink: ``INSERT ... ON CONFLICT DO NOTHING``);
* a node that fails hands over nothing: a retry (or the error handler, under keys of its own)
  records what happened instead.

A batch is one node's events, stored together or not at all. The app wires in a sink that writes
``exception_events`` (``app.cases.events``); the CLI and evaluations use ``MemoryEventSink``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from graph.state import AuditEvent, Stage


@dataclass(frozen=True)
class CaseKey:
    """A case's thread: the tenant and the exception id."""

    tenant_id: str
    exception_id: str


class KeyedEvent(NamedTuple):
    key: str
    """``stage:visit:n``, unique within the case and the same when the node runs again."""
    event: AuditEvent


def event_keys(
    stage: Stage, visit: int, events: Sequence[AuditEvent], *, failed: bool = False
) -> list[KeyedEvent]:
    """Keys for one node's batch. A node's failure is recorded under keys of its own
    (``stage:visit:failed:n``): should the node have stored its events before failing, both stay."""
    middle = f"{visit}:failed" if failed else str(visit)
    return [KeyedEvent(f"{stage}:{middle}:{n}", event) for n, event in enumerate(events)]


class EventSink(Protocol):
    async def write(self, case: CaseKey, events: Sequence[KeyedEvent]) -> None:
        """Store ``events`` (one node's batch) in order; keys already stored are skipped."""
        ...


class MemoryEventSink:
    """Events kept in this process, per case, in the order first written; each key once."""

    def __init__(self) -> None:
        self._cases: dict[CaseKey, dict[str, AuditEvent]] = {}

    async def write(self, case: CaseKey, events: Sequence[KeyedEvent]) -> None:
        stored = self._cases.setdefault(case, {})
        for key, event in events:
            stored.setdefault(key, event)

    def trail(self, tenant_id: str, exception_id: str) -> list[AuditEvent]:
        """The case's events written through this sink, in order."""
        return list(self._cases.get(CaseKey(tenant_id, exception_id), {}).values())

    def keys(self, tenant_id: str, exception_id: str) -> list[str]:
        return list(self._cases.get(CaseKey(tenant_id, exception_id), {}))
