"""The one settings object. Every configurable value is read here (environment variables prefixed
``EXOPS_`` or a ``.env`` file); nothing else in the code base reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

import packs

SAMPLE_PACKS_DIR = Path(packs.__file__).parent / "samples"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXOPS_", env_file=".env", extra="ignore")

    packs_dir: Path = Field(default=SAMPLE_PACKS_DIR, description="Folder of domain and tenant packs.")
    data_dir: Path = Field(default=Path("var"), description="Where the SQLite database and checkpoints live.")

    # LLM (none by default: rules decide, LLM-only features say they are off)
    llm_base_url: str | None = Field(default=None, description="Any OpenAI-compatible endpoint.")
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    llm_timeout_seconds: float = Field(default=30.0, gt=0)

    # Secrets that packs refer to by name (tool auth, webhook URLs, per-tenant LLM keys), as JSON:
    # EXOPS_SECRETS='{"CAPMKTS_API_TOKEN": "..."}'
    secrets: dict[str, SecretStr] = Field(default_factory=dict)

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
    rate_limit_per_minute: int = Field(default=600, ge=1, description="Requests per tenant per minute")
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_batch: int = Field(default=500, ge=1, description="Exceptions in one POST")
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    deadline_sweep_seconds: float = Field(default=30.0, gt=0)
    demo: bool = Field(default=True, description="exops start creates demo tenants and keys")

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
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'exops.db'}"

    def secret(self, name: str) -> str | None:
        value = self.secrets.get(name)
        return value.get_secret_value() if value is not None else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
