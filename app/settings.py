"""The one settings object. Every configurable value is read here (environment variables prefixed
``EXOPS_`` or a ``.env`` file); nothing else in the code base reads the environment."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import packs
from app.secrets import SecretBook
from packs.addresses import address_refusal, literal_address, parse_networks, static_url_refusal
from packs.jsonvalues import DEFAULT_MAX_DEPTH

SAMPLE_PACKS_DIR = Path(packs.__file__).parent / "samples"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EXOPS_", env_file=".env", extra="ignore",
        hide_input_in_errors=True,  # a refused value may be a secret (EXOPS_SECRETS, keys, passwords)
    )  # fmt: skip

    packs_dir: Path = Field(default=SAMPLE_PACKS_DIR, description="Folder of domain and tenant packs.")
    data_dir: Path = Field(default=Path("var"), description="Where the SQLite database and checkpoints live.")

    # LLM (none by default: rules decide, LLM-only features say they are off)
    llm_base_url: str | None = Field(default=None, description="Any OpenAI-compatible endpoint.")
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    llm_timeout_seconds: float = Field(default=30.0, gt=0)

    secrets: SecretBook = Field(
        default_factory=SecretBook,
        description="Secrets packs name (tool auth, webhook URLs, tenant LLM keys), per namespace: "
        '{"platform": {NAME: value}, "tenants": {TENANT_ID: {NAME: value}}}; a flat {NAME: value} is '
        "platform-wide. Read only through a scope (app/secrets.py).",
    )

    # Storage and server
    database_url: str | None = Field(
        default=None,
        description="sqlite:///path or postgresql://user:pass@host/db; default: DATA_DIR/exops.db",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 key for bearer tokens; none: API keys only"
    )
    jwt_audience: str = "exops"
    jwt_max_lifetime_minutes: int = Field(
        default=720,
        ge=1,
        description="Longest a bearer token may live: exp - iat (exp - now without iat); longer ones, "
        "and tokens without exp, are refused",
    )
    rate_limit_per_minute: int = Field(default=600, ge=1, description="Requests per tenant per minute")
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_batch: int = Field(default=500, ge=1, description="Exceptions in one POST")
    max_json_depth: int = Field(
        default=DEFAULT_MAX_DEPTH,
        ge=8,
        le=200,
        description="Nesting levels a JSON request body may have (400 beyond); at most 200, as the graph's "
        "checkpoints cannot hold values nested much deeper",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="serve/start bring the schema to the latest version at start-up, under the migration "
        "lock; false: they only check it is (run exops db upgrade first) and refuse to start otherwise",
    )
    shared_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=5,
        description="How often a process looks for changes other processes made to shared state (pack "
        "versions, tool switches, circuit breakers): the bound on how stale its copy can be",
    )
    worker_concurrency: int = Field(
        default=4, ge=1, le=64, description="Jobs a worker runs at once (exops serve, exops worker)"
    )
    deadline_sweep_seconds: float = Field(
        default=30.0, gt=0, description="How often overdue approvals and lapsed claims are swept"
    )
    answer_wait_seconds: float = Field(
        default=5.0, ge=0, le=60,
        description="How long a request that resumes a case (approve, complete a step, recalculate) waits "
        "for its job before answering 202 with a link to follow",
    )  # fmt: skip
    job_lease_seconds: float = Field(
        default=30.0, ge=1, le=3600,
        description="A running job's lease (renewed while it runs); a job whose process died is taken again "
        "once it runs out. On PostgreSQL: how long a worker may miss heartbeats before its jobs are retried",
    )  # fmt: skip
    claim_lease_seconds: float = Field(
        default=600.0, ge=5,
        description="How long a person's answer holds its approval or step while its job applies it; an "
        "answer the graph never took by then is returned (applied exactly once, or not at all)",
    )  # fmt: skip
    job_max_attempts: int = Field(default=5, ge=1, le=100, description="Tries of a job that keeps failing")
    job_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often idle workers look for jobs another process queued"
    )
    job_retention_hours: float = Field(
        default=24.0, ge=0, description="Finished jobs are kept this long (job status links), then deleted"
    )
    worker_shutdown_seconds: float = Field(
        default=30.0, ge=0,
        description="On stop, how long a worker lets running jobs finish before it gives them back",
    )  # fmt: skip
    demo: bool = Field(default=True, description="exops start creates demo tenants and keys")

    # Similar-case memory
    memory_enabled: bool = Field(
        default=True,
        description="Remember finished cases and consult them in triage (each tenant pack's memory.enabled "
        "can turn it off for that tenant); false: triage says memory is off",
    )
    chroma_url: str | None = Field(
        default=None,
        description="A chroma server (http://host:port) for many processes and at scale; none: an embedded "
        "store under DATA_DIR/memory",
    )

    # Tools and notifications
    tool_mode: Literal["dry-run", "live"] = Field(
        default="dry-run", description="How the server runs call_tool steps; exops run has --tool-mode."
    )
    outbound_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Private, loopback or link-local networks exops may reach (tools, webhooks, SMTP, "
        'LLM endpoints), e.g. ["10.1.0.0/16"] or ["127.0.0.1/32"] for a local llama.cpp server',
    )
    tool_breaker_failures: int = Field(default=5, ge=1, description="Failures in a row that open a breaker")
    tool_breaker_reset_seconds: float = Field(default=30.0, gt=0, description="Open → half-open after this")
    tool_backoff_seconds: float = Field(default=0.5, ge=0, description="First retry delay; doubles, jittered")
    tool_backoff_max_seconds: float = Field(default=8.0, ge=0)
    notifications: Literal["record", "send"] = Field(
        default="record", description="record: audit what would be sent; send: deliver by SMTP and webhooks"
    )
    notification_retries: int = Field(default=2, ge=0, le=10)
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_from: str = "exops@localhost"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)

    # Operator UI
    ui_session_secret: SecretStr | None = Field(
        default=None,
        description="Signs UI session cookies; none: a key generated once and kept in the database, "
        "shared by every process",
    )
    ui_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    ui_secure_cookies: bool = Field(
        default=False, description="Mark the session cookie Secure (serve over HTTPS)"
    )

    # Graph runs
    checkpoint_durability: Literal["sync", "async", "exit"] = "sync"
    approval_timeout_minutes: int = Field(default=240, ge=1)
    run_concurrency: int = Field(default=4, ge=1, le=64)

    @property
    def checkpoint_path(self) -> Path:
        return self.data_dir / "checkpoints.sqlite"

    @property
    def cli_checkpoint_path(self) -> Path:
        """``exops run``/``resume`` keep their own checkpoints, apart from the server's cases."""
        return self.data_dir / "cli-checkpoints.sqlite"

    @property
    def memory_path(self) -> Path:
        return self.data_dir / "memory"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'exops.db'}"

    @field_validator("outbound_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP network such as 10.0.0.0/8") from None
        return value

    @model_validator(mode="after")
    def _endpoints_pass_the_outbound_policy(self) -> Settings:
        """The operator's own endpoints obey the outbound policy too: one that could only ever be
        refused (a loopback LLM server not allowed in EXOPS_OUTBOUND_ALLOWED_NETWORKS) stops the
        start, instead of failing every call later."""
        networks = parse_networks(self.outbound_allowed_networks)
        if self.llm_base_url and (reason := static_url_refusal(self.llm_base_url, networks)):
            raise ValueError(f"EXOPS_LLM_BASE_URL is refused by the outbound policy: {reason}")
        address = literal_address(self.smtp_host) if self.smtp_host else None
        if address is not None and (reason := address_refusal(address, networks)):
            raise ValueError(
                f"EXOPS_SMTP_HOST is refused by the outbound policy: {reason} "
                "(allow its network in EXOPS_OUTBOUND_ALLOWED_NETWORKS if this is intended)"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
