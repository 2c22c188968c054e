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

    # Graph runs
    checkpoint_durability: Literal["sync", "async", "exit"] = "sync"
    approval_timeout_minutes: int = Field(default=240, ge=1)
    run_concurrency: int = Field(default=4, ge=1, le=64)

    @property
    def checkpoint_path(self) -> Path:
        return self.data_dir / "checkpoints.sqlite"

    def secret(self, name: str) -> str | None:
        value = self.secrets.get(name)
        return value.get_secret_value() if value is not None else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
