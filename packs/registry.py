"""The pack registry: every pack of a folder, kept current as files change.

Domain packs are keyed by name and version, tenant packs by tenant id. A file that turns bad keeps
serving its last good version while the registry reports the error, so a typo in a pack never takes
a tenant offline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from packs.documents import pack_files
from packs.domain import DomainPack
from packs.loader import LoadedPack, LoadResult, find_domain, load_many
from packs.problems import Problem
from packs.tenant import TenantPolicyPack


class PackRegistry:
    """Packs loaded from one folder (domain and tenant packs mixed), reloadable at any time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._by_file: dict[str, LoadedPack] = {}
        self._tenants: dict[str, LoadedPack] = {}
        self.errors: dict[str, list[Problem]] = {}

    @classmethod
    def from_directory(cls, root: Path) -> PackRegistry:
        registry = cls(root)
        registry.reload()
        return registry

    def domain(self, name: str, version: str | None = None) -> DomainPack | None:
        """A domain pack by name, the given version or else the newest."""
        return find_domain(self._by_file.values(), name, version)

    def tenant(self, tenant_id: str) -> TenantPolicyPack | None:
        loaded = self._tenants.get(tenant_id)
        return loaded.pack if loaded is not None and isinstance(loaded.pack, TenantPolicyPack) else None

    def domain_of(self, tenant: TenantPolicyPack) -> DomainPack:
        domain = self.domain(tenant.domainName, tenant.domainVersion)
        if domain is None:
            raise LookupError(
                f"domain pack {tenant.domainName!r} for tenant {tenant.tenantId!r} is not loaded"
            )
        return domain

    def domains(self) -> list[LoadedPack]:
        return sorted((p for p in self._by_file.values() if p.kind == "domain"), key=lambda p: p.key)

    def tenants(self) -> list[LoadedPack]:
        return sorted((p for p in self._by_file.values() if p.kind == "tenant"), key=lambda p: p.key)

    def reload(self) -> LoadResult:
        """Re-read the folder; a bad file keeps its last good version and its problems are reported."""
        files = pack_files(self.root) if self.root.exists() else []
        result = load_many(files, previous=self._by_file)
        errors: dict[str, list[Problem]] = {}
        for problem in result.errors:
            errors.setdefault(problem.file, []).append(problem)
        with self._lock:
            self._by_file = {p.source: p for p in result.packs}
            self._tenants = {p.key: p for p in result.packs if p.kind == "tenant"}
            self.errors = errors
        return result

    def watch(self, *, stop: threading.Event, on_reload: Callable[[LoadResult], None] | None = None) -> None:
        """Reload whenever a file under the root changes, until ``stop`` is set (blocking)."""
        import watchfiles

        for _changes in watchfiles.watch(self.root, stop_event=stop, debounce=200, step=50):
            result = self.reload()
            if on_reload is not None:
                on_reload(result)

    def start_watching(self, on_reload: Callable[[LoadResult], None] | None = None) -> threading.Event:
        """Watch in a daemon thread; set the returned event to stop it."""
        stop = threading.Event()
        thread = threading.Thread(
            target=self.watch, kwargs={"stop": stop, "on_reload": on_reload}, name="pack-watch", daemon=True
        )
        thread.start()
        return stop
