"""Signed cookie values: a JSON document, base64url-encoded, with an HMAC-SHA256 of it.

The session cookie and the flash cookie are both such values. Each kind signs under a label of its own,
so a value made for one can never pass for the other, even though both use the UI secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


def _sign(body: bytes, secret: bytes, label: bytes) -> str:
    digest = hmac.new(secret, label + body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def seal(data: object, secret: bytes, label: bytes = b"") -> str:
    """``data`` as JSON, encoded and signed: ``BODY.SIGNATURE``."""
    body = base64.urlsafe_b64encode(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
    text = body.decode().rstrip("=")
    return f"{text}.{_sign(text.encode(), secret, label)}"


def unseal(value: str | None, secret: bytes, label: bytes = b"") -> object | None:
    """The document in ``value`` when its signature holds under ``label``, else None (never raises)."""
    if not value or "." not in value:
        return None
    body, signature = value.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(body.encode(), secret, label)):
        return None
    try:
        document: object = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return document
    except ValueError:
        return None
