"""The system of record: tenants, credentials, pack versions, cases and everything that happened to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.db.types import JsonDoc, UtcDateTime, utc_now

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(model: type[Base]) -> Table:
    """A model's Core table, typed as one (for statements built once, outside the ORM)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Tenant(Base):
    """A tenant, its id kept exactly as written; no two ids may differ only in case."""

    __tablename__ = "tenants"
    __table_args__ = (Index("uq_tenants_id_folded", func.lower("tenant_id"), unique=True),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class ApiKey(Base):
    """A credential: only a hash of the secret is kept; ``tenant_id`` None means platform admin."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.tenant_id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200), default="")
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TokenRevocation(Base):
    """A bearer token refused before it expires: one token (``jti``), or every token of a subject
    issued up to ``revoked_at``. Scoped to the tenant of the tokens (None: platform-admin tokens)."""

    __tablename__ = "token_revocations"
    __table_args__ = (
        CheckConstraint("(jti IS NULL) <> (subject IS NULL)", name="ck_token_revocations_one_target"),
    )

    revocation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.tenant_id"), index=True)
    jti: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(500))
    revoked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    revoked_by: Mapped[str] = mapped_column(String(200))


class PackVersion(Base):
    """Every version of every pack ever loaded or uploaded; one active version per pack."""

    __tablename__ = "pack_versions"
    __table_args__ = (UniqueConstraint("kind", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # domain | tenant
    name: Mapped[str] = mapped_column(String(128), index=True)  # domainName or tenantId
    version: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    content_hash: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(500), default="api")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PackActivation(Base):
    """Each activation of a pack version, by whom; a rollback undoes the latest one still standing."""

    __tablename__ = "pack_activations"
    __table_args__ = (Index("ix_pack_activations_pack", "kind", "name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    activated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    activated_by: Mapped[str] = mapped_column(String(200))
    undone_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    undone_by: Mapped[str | None] = mapped_column(String(200))


class ExceptionCase(Base):
    """One exception: the raw input as accepted, the canonical record and the graph's current decisions."""

    __tablename__ = "exceptions"
    __table_args__ = (
        Index("ix_exceptions_tenant_status", "tenant_id", "status"),
        Index("ix_exceptions_tenant_severity", "tenant_id", "severity"),
        Index("ix_exceptions_tenant_type", "tenant_id", "exception_type"),
        Index("ix_exceptions_tenant_received", "tenant_id", "received_at"),
        Index("ix_exceptions_tenant_processing", "processing"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id"), primary_key=True)
    exception_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    source_system: Mapped[str] = mapped_column(String(200), default="unknown")
    reported_type: Mapped[str | None] = mapped_column(String(200))
    exception_type: Mapped[str | None] = mapped_column(String(200))
    severity: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(32), default="OPEN")  # a resolution status
    actionability: Mapped[str | None] = mapped_column(String(40))
    playbook_id: Mapped[str | None] = mapped_column(String(128))
    assigned_group: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    record: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    processing: Mapped[str] = mapped_column(String(20), default="accepted")  # accepted|running|waiting|done
    events_synced: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    run_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ExceptionEvent(Base):
    """The append-only timeline of a case: stage decisions, tool calls, approvals, steps, human actions."""

    __tablename__ = "exception_events"
    __table_args__ = (
        Index("uq_exception_events_key", "tenant_id", "exception_id", "event_key", unique=True),
    )
    """One index: a case's events are found (and numbered, and kept unique) through their keys."""

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(String(64))
    exception_id: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(60))
    stage: Mapped[str] = mapped_column(String(30))
    actor_type: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    pack_versions: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    event_key: Mapped[str | None] = mapped_column(String(64))
    """Where the graph recorded it (``stage:visit:n``, ``graph.events``), unique within the case;
    NULL for events written before keys existed."""


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_tenant_status", "tenant_id", "status"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    approval_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    exception_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(
        String(20), default="PENDING"
    )  # PENDING|CLAIMED|APPROVED|REJECTED|EDITED|EXPIRED|TAKEN_OVER
    severity: Mapped[str | None] = mapped_column(String(10))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    deadline: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    decision: Mapped[str | None] = mapped_column(String(20))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    comment: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected
    # A person's answer in flight (a claim): who, when, the plan digest they saw, until when the claim
    # holds, the answer itself, and the job applying it (see app/jobs/claims.py).
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claim_digest: Mapped[str | None] = mapped_column(String(64))
    claim_lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claim_answer: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    claim_job: Mapped[str | None] = mapped_column(String(64))
    claim_interrupt: Mapped[str | None] = mapped_column(String(64))
    claim_outcome: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)


class PlaybookState(Base):
    """The plan of a case as operators see it: the playbook, each step's status, the current step."""

    __tablename__ = "playbook_states"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    exception_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    playbook_id: Mapped[str | None] = mapped_column(String(128))
    playbook: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc)
    current_step: Mapped[int | None] = mapped_column(Integer)
    selection: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    """The policy's playbook choice: actionability, the playbooks considered, and why."""
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    waiting_step: Mapped[int | None] = mapped_column(Integer)  # the manual step the graph waits on
    claim_step: Mapped[int | None] = mapped_column(Integer)  # the step the latest claim names
    claim_state: Mapped[str | None] = mapped_column(String(10))  # claimed | applied | released
    # A person's answer in flight (a claim): who, when, the plan digest they saw, until when the claim
    # holds, the answer itself, and the job applying it (see app/jobs/claims.py).
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claim_digest: Mapped[str | None] = mapped_column(String(64))
    claim_lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claim_answer: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    claim_job: Mapped[str | None] = mapped_column(String(64))
    claim_interrupt: Mapped[str | None] = mapped_column(String(64))
    claim_outcome: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)


class CaseJob(Base):
    """A unit of case work on the embedded (SQLite) job queue: process a case, apply a person's answer,
    sweep deadlines. A worker takes one with a conditional UPDATE (never a job of a case that has
    another one running or an earlier one waiting) and holds it under a lease it renews while it
    runs; a job whose lease ran out (its process died) is taken again the same way. A case stored as
    accepted gets its ``process`` job from a trigger (migration 0008). On PostgreSQL procrastinate
    keeps its own jobs and this table stays empty."""

    __tablename__ = "case_jobs"
    __table_args__ = (
        Index("ix_case_jobs_ready", "status", "job_id"),
        Index("ix_case_jobs_case", "tenant_id", "exception_id", "status"),
    )

    job_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # process | answer | sweep
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    exception_id: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued|running|done|failed
    owner: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    run_after: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class ToolExecution(Base):
    __tablename__ = "tool_executions"
    __table_args__ = (Index("ix_tool_executions_tenant", "tenant_id", "tool", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(String(64))
    exception_id: Mapped[str] = mapped_column(String(128))
    tool: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    arguments: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    request: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    response: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    breaker: Mapped[str | None] = mapped_column(String(10), nullable=True)
    attempt_log: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonDoc, nullable=True)


class TenantToolSetting(Base):
    """A tenant switching one of its allow-listed tools off (or back on) without a new policy pack."""

    __tablename__ = "tenant_tool_settings"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tool: Mapped[str] = mapped_column(String(128), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class Run(Base):
    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # ingest | run
    exception_count: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    exception_ids: Mapped[list[str]] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    created_by: Mapped[str] = mapped_column(String(200), default="system")


Index("ix_runs_idempotency", Run.tenant_id, Run.idempotency_key, unique=True)


class SharedGeneration(Base):
    """A counter per kind of state every process keeps a local copy of (``packs``: active versions
    and tool switches; ``breakers``), raised in the transaction of each change. Processes poll these
    few rows (``app/shared/``) and reload only what changed."""

    __tablename__ = "shared_generations"

    topic: Mapped[str] = mapped_column(String(40), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class ToolBreaker(Base):
    """A circuit breaker that is not plainly closed, shared by every process (``tenant/domain/tool``).
    Times are seconds since the epoch, so conditional UPDATEs compute with them the same way on SQLite
    and PostgreSQL. A closed breaker has no row."""

    __tablename__ = "tool_breakers"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[float | None] = mapped_column(Float)
    trial_until: Mapped[float | None] = mapped_column(Float)
    trial_owner: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[float] = mapped_column(Float)


class RateBucket(Base):
    """A token bucket of the request rate limit (one per tenant), shared by every API process, which
    take tokens from it in small leases (``app/shared/buckets.py``). ``granted`` is what the latest
    lease took, read back with RETURNING."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    granted: Mapped[float] = mapped_column(Float, default=0.0)


class InstanceSecret(Base):
    """A secret the installation generates once and every process shares (the UI session key, unless
    set in the settings)."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class MemoryQueue(Base):
    """Finished cases still to be remembered (similar-case memory, ``app/memory``). The projection
    writes the row in the transaction that records the case as finished, and the indexer deletes it
    once the case's vector is stored: a process killed in between leaves the row, and the next
    indexer pass (or sweep) remembers the case."""

    __tablename__ = "memory_queue"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    exception_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class EmbeddingCache(Base):
    """Embeddings already computed, per tenant, model and text (SHA-256), so re-indexing, rebuilds and
    re-runs do not embed the same text twice. Kept per tenant like everything else of a tenant's."""

    __tablename__ = "embedding_cache"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(300), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    """float32, little-endian."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
