"""Who may call, remembered for a few seconds: verified API keys and active tenants.

Every API request checks its key and the tenant in its path. Reading both from the database took two
sessions per request, more than storing an exception does, and stamping the key's ``last_used_at``
on every call turned every request, reads included, into a write queued on SQLite's single write
lock. So this process keeps:

* a verified key (its secret's hash, and the principal it stands for) for ``ttl`` seconds. The
  presented secret is still hashed and compared on every request; revoking a key through the API
  forgets it here at once, so it answers 401 from its next request on (another server process
  sharing the database notices within ``ttl``);
* when each key's ``last_used_at`` was last written: it is written at most once per ``touch_every``
  seconds, so the key listing is accurate to that;
* active tenants (id → name) for ``ttl`` seconds. An unknown tenant is never remembered, so one
  created a moment ago is found at once. Tenants are never deleted; one switched off in the database
  stops answering within ``ttl``;
* each scope's bearer-token revocations (``app/auth/revocations.py``) for ``ttl`` seconds; a
  revocation made through this process forgets its scope at once, so the next request reads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from app.auth.principal import Principal
from app.auth.revocations import Revoked


@dataclass(frozen=True)
class KnownKey:
    secret_hash: str
    principal: Principal


class AccessCache:
    def __init__(
        self, *, ttl: float = 5.0, touch_every: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.touch_every = touch_every
        self.clock = clock
        self._keys: dict[str, tuple[float, KnownKey]] = {}
        self._touched: dict[str, float] = {}
        self._tenants: dict[str, tuple[float, str]] = {}
        self._revoked: dict[str | None, tuple[float, Revoked]] = {}

    def key(self, key_id: str) -> KnownKey | None:
        """The key as verified less than ``ttl`` seconds ago, if it was."""
        found = self._keys.get(key_id)
        if found is None or found[0] <= self.clock():
            self._keys.pop(key_id, None)
            return None
        return found[1]

    def remember_key(self, key_id: str, known: KnownKey) -> None:
        self._keys[key_id] = (self.clock() + self.ttl, known)

    def forget_key(self, key_id: str) -> None:
        """The key was revoked: the next request with it reads the database again."""
        self._keys.pop(key_id, None)

    def touch_due(self, key_id: str) -> bool:
        """Whether the key's ``last_used_at`` is older than ``touch_every`` (or unknown here)."""
        return self.clock() - self._touched.get(key_id, float("-inf")) >= self.touch_every

    def touched(self, key_id: str) -> None:
        """``last_used_at`` of this verified key was just written. Only verified keys are recorded, so
        requests with made-up key ids cannot grow this map."""
        self._touched[key_id] = self.clock()

    def tenant(self, tenant_id: str) -> str | None:
        """The name of a tenant found active less than ``ttl`` seconds ago, if it was."""
        found = self._tenants.get(tenant_id)
        if found is None or found[0] <= self.clock():
            self._tenants.pop(tenant_id, None)
            return None
        return found[1]

    def remember_tenant(self, tenant_id: str, name: str) -> None:
        self._tenants[tenant_id] = (self.clock() + self.ttl, name)

    def revoked(self, scope: str | None) -> Revoked | None:
        """The scope's revocations as read less than ``ttl`` seconds ago, if they were."""
        found = self._revoked.get(scope)
        if found is None or found[0] <= self.clock():
            self._revoked.pop(scope, None)
            return None
        return found[1]

    def remember_revoked(self, scope: str | None, revoked: Revoked) -> None:
        self._revoked[scope] = (self.clock() + self.ttl, revoked)

    def forget_revoked(self, scope: str | None) -> None:
        """A revocation was just recorded in ``scope``: the next token of it reads the database."""
        self._revoked.pop(scope, None)
