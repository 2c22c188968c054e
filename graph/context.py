"""Per-run context: the packs in force, the tool mode, the LLM and the adapters the app wires in.

Context is not state: it is passed to every run (and every resume) and never checkpointed, so
packs, clients, secrets and the event sink stay out of the checkpoint store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Literal

from graph.events import EventSink, MemoryEventSink
from graph.llm import LlmClient
from graph.memory import SimilarCaseMemory
from packs.domain import DomainPack
from packs.tenant import TenantPolicyPack
from tools.dry_run import DryRunExecutor
from tools.executor import ToolExecutor
from tools.notifications.model import Notifier
from tools.notifications.notifier import RecordingNotifier
from tools.registry import ToolRegistry

LLM_MAX_ATTEMPTS = 3
"""Attempts of a node that calls the LLM (LangGraph RetryPolicy); the last one degrades gracefully."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunContext:
    tenant: TenantPolicyPack
    domain: DomainPack
    tool_mode: Literal["dry-run", "live"] = "dry-run"
    executor: ToolExecutor = field(default_factory=DryRunExecutor)
    notifier: Notifier = field(default_factory=RecordingNotifier)
    llm: LlmClient | None = None
    memory: SimilarCaseMemory | None = None
    clock: Callable[[], datetime] = utc_now
    approval_timeout_minutes: int = 240
    run_id: str = "adhoc"
    events: EventSink = field(default_factory=MemoryEventSink)
    """Where nodes' audit events are stored (``graph.events``): the app's tables, or memory."""

    @property
    def pack_versions(self) -> dict[str, str]:
        return {
            "domain": f"{self.domain.domainName}@{self.domain.version}",
            "tenant": f"{self.tenant.tenantId}@{self.tenant.version}",
        }

    @cached_property
    def tools(self) -> ToolRegistry:
        """The tenant's tools with its own limits; built once per run (the packs do not change)."""
        return ToolRegistry(self.domain, self.tenant)

    def now_iso(self) -> str:
        return self.clock().isoformat()
