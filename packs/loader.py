"""Loading one pack: read, rewrite older layouts, validate the schema, check cross-references."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from packs.common import PackKind
from packs.documents import detect_kind, read_document
from packs.domain import DomainPack
from packs.importer import upgrade_document
from packs.problems import PackError, Problem, problems_from_validation
from packs.tenant import TenantPolicyPack
from packs.validation import check_domain, check_tenant

DomainLookup = Callable[[str, str | None], DomainPack | None]
"""Finds a domain pack by name and optional version (the newest when None)."""


@dataclass(frozen=True)
class LoadedPack:
    kind: PackKind
    source: str
    pack: DomainPack | TenantPolicyPack
    document: dict[str, Any]
    notices: tuple[Problem, ...] = ()

    @property
    def key(self) -> str:
        if isinstance(self.pack, DomainPack):
            return f"{self.pack.domainName}@{self.pack.version}"
        return self.pack.tenantId


def _kind_of(data: dict[str, Any], file: str) -> PackKind:
    kind = detect_kind(data)
    if kind is None:
        raise PackError(
            [
                Problem(
                    file,
                    "$",
                    "cannot tell the pack kind: a domain pack has 'domainName' and 'exceptionTypes', "
                    "a tenant policy pack has 'tenantId'",
                )
            ]
        )
    return kind


def load_domain(data: dict[str, Any], file: str) -> LoadedPack:
    """Validate a domain pack document (any layout); raise PackError with every problem."""
    document, notices = upgrade_document("domain", data, file)
    try:
        pack = DomainPack.model_validate(document)
    except ValidationError as exc:
        raise PackError(problems_from_validation(file, exc, document)) from None
    problems = sorted(check_domain(pack, file))
    if problems:
        raise PackError(problems)
    return LoadedPack("domain", file, pack, document, tuple(notices))


def load_tenant(data: dict[str, Any], file: str, find_domain: DomainLookup) -> LoadedPack:
    """Validate a tenant pack document against its domain pack; raise PackError with every problem."""
    name = data.get("domainName")
    pin = data.get("domainVersion")
    domain = find_domain(name, pin if isinstance(pin, str) else None) if isinstance(name, str) else None
    document, notices = upgrade_document("tenant", data, file, domain=domain)
    try:
        pack = TenantPolicyPack.model_validate(document)
    except ValidationError as exc:
        raise PackError(problems_from_validation(file, exc, document)) from None
    if domain is None:
        wanted = f"{pack.domainName} {pack.domainVersion}" if pack.domainVersion else pack.domainName
        raise PackError([Problem(file, "$.domainName", f"domain pack {wanted!r} is not loaded")])
    problems = sorted(check_tenant(pack, domain, file))
    if problems:
        raise PackError(problems)
    return LoadedPack("tenant", file, pack, document, tuple(notices))


def load_document(data: dict[str, Any], file: str, find_domain: DomainLookup) -> LoadedPack:
    """Load a parsed document of either kind."""
    if _kind_of(data, file) == "domain":
        return load_domain(data, file)
    return load_tenant(data, file, find_domain)


def load_file(path: Path, find_domain: DomainLookup) -> LoadedPack:
    """Read and load one pack file of either kind."""
    return load_document(read_document(path), str(path), find_domain)


@dataclass
class LoadResult:
    packs: list[LoadedPack]
    errors: list[Problem]
    notices: list[Problem]
    kept_last_good: list[str]

    def domain(self, name: str, version: str | None = None) -> DomainPack | None:
        return find_domain([p for p in self.packs if isinstance(p.pack, DomainPack)], name, version)


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Order versions numerically where they are numbers (``1.10.0`` after ``1.9.2``)."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"[.+-]", version))


def find_domain(loaded: Iterable[LoadedPack], name: str, version: str | None) -> DomainPack | None:
    """The named domain pack at ``version``, or the newest version when None."""
    candidates = [p.pack for p in loaded if isinstance(p.pack, DomainPack) and p.pack.domainName == name]
    if version is not None:
        return next((p for p in candidates if p.version == version), None)
    return max(candidates, key=lambda p: version_key(p.version), default=None)


def load_many(
    files: Iterable[Path],
    *,
    fallback: DomainLookup | None = None,
    previous: Mapping[str, LoadedPack] | None = None,
) -> LoadResult:
    """Load files of both kinds: domain packs first, then tenant packs checked against them.

    ``fallback`` finds domain packs that are not among ``files``; ``previous`` holds the last good
    version of each file, kept when the file has turned bad.
    """
    files = list(files)
    kinds = {path: peek_kind(path) for path in files}
    result = LoadResult([], [], [], [])
    keys: dict[str, LoadedPack] = {}
    folded: dict[str, LoadedPack] = {}  # tenant packs by lower-cased id

    def lookup(name: str, version: str | None) -> DomainPack | None:
        found = result.domain(name, version)
        return found if found is not None or fallback is None else fallback(name, version)

    for path in sorted(files, key=lambda p: (kinds[p] != "domain", str(p))):
        file = str(path)
        try:
            loaded = load_file(path, lookup)
        except PackError as exc:
            result.errors.extend(exc.problems)
            kept = (previous or {}).get(file)
            if kept is None:
                continue
            loaded = kept
            result.kept_last_good.append(file)
        else:
            result.notices.extend(loaded.notices)
        other = keys.get(f"{loaded.kind}:{loaded.key}")
        if other is not None:
            field = "$.version" if loaded.kind == "domain" else "$.tenantId"
            result.errors.append(
                Problem(file, field, f"{loaded.kind} pack {loaded.key} is also defined in {other.source}")
            )
            continue
        twin = folded.get(loaded.key.lower()) if loaded.kind == "tenant" else None
        if twin is not None:
            result.errors.append(
                Problem(
                    file,
                    "$.tenantId",
                    f"tenant {loaded.key} differs only in case from tenant {twin.key} in {twin.source}: "
                    "two tenants whose ids differ only in case are refused; rename one",
                )
            )
            continue
        keys[f"{loaded.kind}:{loaded.key}"] = loaded
        if loaded.kind == "tenant":
            folded[loaded.key.lower()] = loaded
        result.packs.append(loaded)
    return result


def peek_kind(path: Path) -> PackKind | None:
    """The kind of a pack file, or None when it cannot be read or told; never raises."""
    try:
        return detect_kind(read_document(path))
    except PackError:
        return None
