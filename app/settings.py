"""The one settings object. Every configurable value is read here (environment variables prefixed
``EXOPS_`` or a ``.env`` file); nothing else in the code base reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import packs

SAMPLE_PACKS_DIR = Path(packs.__file__).parent / "samples"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXOPS_", env_file=".env", extra="ignore")

    packs_dir: Path = Field(default=SAMPLE_PACKS_DIR, description="Folder of domain and tenant packs.")
    data_dir: Path = Field(default=Path("var"), description="Where the SQLite database and checkpoints live.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
