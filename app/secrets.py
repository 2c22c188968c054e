"""The secrets packs refer to by name, kept per owner, and the only way to read one: a scope.

``EXOPS_SECRETS`` holds one namespace for the platform and one per tenant::

    {"platform": {"CAPMKTS_API_TOKEN": "..."},
     "tenants": {"acme-capital": {"ACME_SLACK_SETTLEMENTS_WEBHOOK": "https://hooks..."},
                 "TENANT_FINANCE_001": {"FIN_LLM_KEY": "sk-..."}}}

Tenant ids are the keys exactly as written. The older flat form ``{"NAME": "value"}`` is still read,
as platform secrets.

A reference resolves only within the namespaces of the owner of the pack that holds it, and the
app decides that owner before any run:

- a tenant policy pack is its tenant's: its references (LLM ``apiKeyRef``, webhook ``urlRef``...)
  resolve in that tenant's namespace only, whoever stored it;
- a domain pack the platform stored (an upload by the platform admin, or the server's packs
  folder) is the platform's: its tools' ``secretRef`` resolve in the running tenant's namespace
  first, then in the platform's;
- a domain pack a tenant user gives inline to ``POST /run`` is that tenant's: tenant namespace only.

So platform secrets are referenceable only by packs the platform stored. ``SecretBook`` keeps the
values private; ``SecretBook.scope`` is the only way to read them, and a ``SecretScope`` is the
callable handed down to tools, notifiers and the LLM wiring. Nothing below the app sees the map.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import GetCoreSchemaHandler, SecretStr
from pydantic_core import core_schema

from tools.secrets import SecretMissing

PLATFORM = "platform"
TENANTS = "tenants"


def _values(raw: Any, where: str) -> dict[str, SecretStr]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object of NAME: value")
    bad = [name for name, value in raw.items() if not isinstance(value, str | SecretStr)]
    if bad:
        raise ValueError(f"{where}: the value of {bad[0]!r} must be a string")
    return {
        str(name): value if isinstance(value, SecretStr) else SecretStr(value) for name, value in raw.items()
    }


class SecretBook:
    """Every configured secret by namespace; read only through ``scope``. Never shows a value."""

    __slots__ = ("__platform", "__tenants")

    def __init__(
        self,
        platform: Mapping[str, str | SecretStr] | None = None,
        tenants: Mapping[str, Mapping[str, str | SecretStr]] | None = None,
    ) -> None:
        self.__platform = _values(dict(platform or {}), PLATFORM)
        self.__tenants = {
            str(tenant): _values(dict(values), f"{TENANTS}.{tenant}")
            for tenant, values in (tenants or {}).items()
        }

    @classmethod
    def parse(cls, value: Any) -> SecretBook:
        """``EXOPS_SECRETS`` as JSON text or an object, in the namespaced form or the flat one."""
        if isinstance(value, SecretBook):
            return value
        if isinstance(value, str | bytes):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError:
                raise ValueError("EXOPS_SECRETS is not valid JSON") from None  # the text is secret
        if not isinstance(value, dict):
            raise ValueError('EXOPS_SECRETS must be a JSON object: {"platform": {...}, "tenants": {...}}')
        if not any(isinstance(item, dict) for item in value.values()):
            return cls(platform=value)  # the flat form of earlier versions: platform secrets
        unknown = sorted(set(value) - {PLATFORM, TENANTS})
        if unknown:
            raise ValueError(
                f'EXOPS_SECRETS: unexpected key {unknown[0]!r}; use {{"platform": {{NAME: value}}, '
                '"tenants": {TENANT_ID: {NAME: value}}} (or the flat {NAME: value} form alone)'
            )
        tenants = value.get(TENANTS, {})
        if not isinstance(tenants, dict):
            raise ValueError("EXOPS_SECRETS: tenants must be an object of TENANT_ID: {NAME: value}")
        return cls(platform=value.get(PLATFORM, {}), tenants=tenants)

    def scope(self, tenant_id: str, *, platform: bool) -> SecretScope:
        """The lookup for a pack owned by ``tenant_id`` (``platform=False``) or by the platform and
        run for ``tenant_id`` (``platform=True``: the tenant's namespace first, then the platform's)."""
        return SecretScope(
            tenant_id, self.__tenants.get(tenant_id, {}), self.__platform if platform else None
        )

    def __repr__(self) -> str:
        return f"SecretBook(platform: {len(self.__platform)}, tenants: {len(self.__tenants)})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse, serialization=core_schema.plain_serializer_function_ser_schema(repr)
        )


class SecretScope:
    """``name -> value`` within one owner's namespaces; raises ``SecretMissing`` (which names the
    reference and the namespace searched, nothing else) for any other name."""

    __slots__ = ("__own", "__platform", "tenant_id")

    def __init__(
        self, tenant_id: str, own: Mapping[str, SecretStr], platform: Mapping[str, SecretStr] | None
    ) -> None:
        self.tenant_id = tenant_id
        self.__own = own
        self.__platform = platform

    @property
    def namespace(self) -> str:
        own = f"the secrets of tenant {self.tenant_id}"
        return f"{own} or the platform's" if self.__platform is not None else own

    def __call__(self, name: str) -> str:
        value = self.__own.get(name)
        if value is None and self.__platform is not None:
            value = self.__platform.get(name)
        if value is None:
            raise SecretMissing(name, self.namespace)
        return value.get_secret_value()

    def __repr__(self) -> str:
        return f"SecretScope({self.namespace})"
