"""The message a page shows once after a form: kept by the server, never taken from the URL.

After a form the person is redirected (303) to a page that says what happened. That message used to
travel in the redirect's query string (``?notice=``, ``?error=``, ``?problem=``), so anyone could
craft a link that made the app display their own words ("Your session expired. Re-enter your API key
at https://..."). Now the message rides in a cookie of its own that the server signs (HMAC with the
UI secret, under a label of its own so it can never pass for a session cookie) and binds to the
session that posted the form; the next page rendered for that session shows it and deletes the
cookie, so it is shown once. A page shows a banner from nothing else.

The cookie stays under browsers' 4 KB limit: messages are shortened and the problem list trimmed,
with a last line saying how many were left out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from app.ui.session import UiSession
from app.ui.signed import seal, unseal

COOKIE = "exops_flash"
_LABEL = b"exops-flash\x00"
MAX_TEXT = 1000
"""Characters kept of a notice, an error or one problem line."""
MAX_VALUE = 3500
"""Bytes of the cookie value at most (with its name and attributes, under the usual 4096)."""


@dataclass(frozen=True)
class Flash:
    notice: str | None = None
    error: str | None = None
    problems: tuple[str, ...] = ()


def _short(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _owner(session: UiSession) -> str:
    """Which session the message is for, without putting the session's CSRF token in another cookie."""
    return hashlib.sha256(session.csrf.encode()).hexdigest()[:24]


def encode(flash: Flash, session: UiSession, secret: bytes) -> str:
    """The signed cookie value for ``flash``, shown only to ``session``: problems are dropped from the
    end (a last line counts them), then the longer message shortened, until it fits."""
    notice, error = _short(flash.notice), _short(flash.error)
    lines = [line for line in (_short(p) for p in flash.problems) if line]
    kept = len(lines)
    while True:
        problems = lines[:kept] + ([f"… and {len(lines) - kept} more"] if kept < len(lines) else [])
        value = seal(
            {"for": _owner(session), "notice": notice, "error": error, "problems": problems}, secret, _LABEL
        )
        if len(value) <= MAX_VALUE:
            return value
        if kept > 0:
            kept -= 1
        elif len(notice or "") >= len(error or ""):
            notice = (notice or "")[: len(notice or "") // 2] + "…"
        else:
            error = (error or "")[: len(error or "") // 2] + "…"


def decode(value: str | None, session: UiSession | None, secret: bytes) -> Flash | None:
    """The message in ``value`` when its signature holds and it is for ``session``, else None."""
    if session is None:
        return None
    data = unseal(value, secret, _LABEL)
    if not isinstance(data, dict) or data.get("for") != _owner(session):
        return None
    notice, error, problems = data.get("notice"), data.get("error"), data.get("problems")
    return Flash(
        notice=notice if isinstance(notice, str) else None,
        error=error if isinstance(error, str) else None,
        problems=tuple(p for p in problems if isinstance(p, str)) if isinstance(problems, list) else (),
    )
