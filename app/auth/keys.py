"""API keys: ``exo_<key id>_<secret>``; only a SHA-256 of the secret is stored, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "exo"


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret_hash: str
    plaintext: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    return NewKey(key_id, hash_secret(secret), f"{PREFIX}_{key_id}_{secret}")


def split_key(presented: str) -> tuple[str, str] | None:
    """The key id and the secret of a presented key, or None when it is not shaped like one."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12:
        return None
    return parts[1], parts[2]


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
