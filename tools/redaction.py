"""Keeping secrets and personal data out of what exops records about tool calls.

Tool requests and replies go into the audit trail, which many people read and which is kept for
years. Two complementary guards run before anything is recorded:

* ``redact`` blanks values by *field name*: names that are secret-like everywhere (passwords,
  tokens, card numbers ...) plus the fields a tenant's audit policy lists.
* ``scrub`` blanks values by *content*: the secret strings exops itself sent. A server that echoes
  a token back in a body or an error message under an innocent name is caught only this way.

Both return copies; the values given are never modified.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

REDACTED = "***"
MIN_SECRET_LENGTH = 4
"""Shorter strings are not scrubbed: replacing every "ab" in a reply would destroy it and hide nothing."""

SECRET_NAMES = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "clientsecret",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "sessiontoken",
        "apikey",
        "xapikey",
        "apitoken",
        "privatekey",
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "ssn",
        "socialsecuritynumber",
        "cardnumber",
        "creditcardnumber",
        "cvv",
        "cvc",
        "pin",
    }
)
"""Field names (normalised, see ``normalise``) redacted whatever the tenant's policy says."""


def normalise(name: str) -> str:
    """``API_Key``, ``api-key`` and ``apiKey`` are the same field for redaction purposes."""
    return name.lower().replace("_", "").replace("-", "")


def redact(value: Any, fields: Iterable[str] = frozenset()) -> Any:
    """A copy of ``value`` in which every dict entry, at any depth, whose key is secret-like or
    named in ``fields`` (compared case-insensitively, ignoring ``_`` and ``-``) holds ``"***"``."""
    names = SECRET_NAMES | {normalise(field) for field in fields}
    return _redact(value, names)


def _redact(value: Any, names: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and normalise(key) in names else _redact(item, names)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item, names) for item in value]
    return value


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of ``value`` in which every occurrence of each secret (of at least
    ``MIN_SECRET_LENGTH`` characters) inside any string, dict keys included, is ``"***"``."""
    # Longest first, so a secret that contains another is replaced whole.
    needles = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    if not needles:
        return value
    return _scrub(value, needles)


def _scrub(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            value = value.replace(needle, REDACTED)
        return value
    if isinstance(value, dict):
        return {_scrub(key, needles): _scrub(item, needles) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, needles) for item in value]
    return value
