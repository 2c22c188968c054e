"""The caller as the API sees it, and what each role may do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["viewer", "operator", "admin", "platform_admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin", "platform_admin")
RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class Principal:
    """A tenant-scoped credential (``tenant_id`` set) or a platform admin (``tenant_id`` None)."""

    subject: str
    role: Role
    tenant_id: str | None
    via: Literal["api_key", "jwt", "session"]

    @property
    def is_platform_admin(self) -> bool:
        return self.role == "platform_admin"

    def may_act_on(self, tenant_id: str) -> bool:
        return self.is_platform_admin or self.tenant_id == tenant_id

    def has(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]

    @property
    def actor(self) -> str:
        return self.subject
