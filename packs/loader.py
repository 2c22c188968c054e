"""Loading one pack: read, rewrite older layouts, validate the schema, check cross-references."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from pydantic import ValidationError

from packs.addresses import Network
from packs.common import PackKind
from packs.documents import detect_kind, read_document
from packs.domain import DomainPack
from packs.endpoints import endpoint_problems
from packs.importer import camel_case_keys, fits, upgrade_document
from packs.importer.notes import Notes
from packs.jsonvalues import DEFAULT_MAX_DEPTH, json_problems
from packs.problems import PackError, Problem, json_path, problems_from_validation
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


def json_only(data: dict[str, Any], file: str) -> None:
    """A document given as data (``/run``'s inline packs, stored versions) obeys the rules a parsed
    one does: JSON values only, bounded nesting (see ``packs.jsonvalues``)."""
    problems = json_problems(data, max_depth=DEFAULT_MAX_DEPTH)
    if problems:
        raise PackError([Problem(file, json_path(path), message) for path, message in problems])


def load_domain(data: dict[str, Any], file: str) -> LoadedPack:
    """Validate a domain pack document (any layout); raise PackError with every problem.

    Problems name the paths of ``data`` as written, even where the importer rewrote them."""
    json_only(data, file)
    upgrade = upgrade_document("domain", data, file)
    problems = list(upgrade.problems)
    try:
        pack = DomainPack.model_validate(upgrade.document)
    except ValidationError as exc:
        problems += upgrade.located(problems_from_validation(file, exc, upgrade.document))
        raise PackError(sorted(set(problems))) from None
    problems += upgrade.located(check_domain(pack, file))
    if problems:
        raise PackError(sorted(set(problems)))
    return LoadedPack("domain", file, pack, upgrade.document, tuple(upgrade.notices))


def runtime_scope(source: str, domain_name: str) -> str | None:
    """The tenant a domain pack file belongs to in the earlier system's runtime layout
    (``…/domainpacks/<TENANT>/<Domain>/<version>.json`` or ``…/domainpacks/<TENANT>/<Domain>.json``)."""
    path = PurePath(source)
    parts = path.parts
    if len(parts) >= 4 and parts[-2] == domain_name and parts[-4] == "domainpacks":
        return parts[-3]
    if len(parts) >= 3 and path.stem == domain_name and parts[-3] == "domainpacks":
        return parts[-2]
    return None


@dataclass(frozen=True)
class FailedDomain:
    """A domain pack file of the same batch that did not load (its name when it could be read)."""

    name: str | None
    file: str


@dataclass(frozen=True)
class DomainChoice:
    domain: DomainPack | None
    reason: str | None = None
    pin: bool = False
    problem: Problem | None = None
    knock_on: bool = False


def _listing(packs: Sequence[LoadedPack]) -> str:
    return ", ".join(f"{p.key} ({p.source})" for p in packs)


def choose_domain(
    data: dict[str, Any],
    file: str,
    find_domain: DomainLookup,
    beside: Sequence[LoadedPack] = (),
    failed: Sequence[FailedDomain] = (),
) -> DomainChoice:
    """The domain pack a tenant pack runs on.

    It is the one it names (the pinned version, else the newest), with two exceptions that only
    older layouts produce: a pack that names no domain takes the domain pack beside it (the only
    one; else the one stored for this tenant; else the only one holding every type, tool and
    playbook the pack names); and when the earlier system's runtime folders hold different copies of
    the named domain, the tenant gets the copy stored for it, else the one not stored for another
    tenant, else the only copy that fits."""
    tenant_id = str(data.get("tenantId") or "")
    name = data.get("domainName")
    pin = data.get("domainVersion")
    domains = [p for p in beside if isinstance(p.pack, DomainPack)]
    packs_of = {id(p): p.pack for p in domains if isinstance(p.pack, DomainPack)}
    if isinstance(name, str):
        if isinstance(pin, str):
            found = find_domain(name, pin)
        else:
            same = [p for p in domains if p.pack.domainName == name]
            scoped = [p for p in same if runtime_scope(p.source, name) is not None]
            if len(same) > 1 and scoped:
                return _among_copies(data, file, name, tenant_id, same)
            found = find_domain(name, None)
        if found is None:
            broken = [f.file for f in failed if f.name == name]
            if broken:
                return DomainChoice(
                    None,
                    problem=Problem(
                        file,
                        "$.domainName",
                        f"not checked: its domain pack {name!r} ({', '.join(broken)}) did not load; fix "
                        "that file first",
                    ),
                    knock_on=True,
                )
        return DomainChoice(found)
    if not domains:
        if failed:
            return DomainChoice(
                None,
                problem=Problem(
                    file,
                    "$.domainName",
                    "missing, and not checked: the domain pack beside it "
                    f"({', '.join(f.file for f in failed)}) did not load; fix that file first",
                ),
                knock_on=True,
            )
        return DomainChoice(
            None,
            problem=Problem(
                file, "$.domainName", "missing: name the domain pack this tenant runs (none is beside it)"
            ),
        )
    own = [p for p in domains if runtime_scope(p.source, p.pack.domainName) == tenant_id]
    if len(own) == 1:
        chosen, reason = own[0], f"the domain pack stored for tenant {tenant_id}: {own[0].source}"
    elif len(domains) == 1:
        chosen, reason = domains[0], f"the only domain pack beside it: {domains[0].source}"
    else:
        fitting = [p for p in domains if fits(data, packs_of[id(p)])]
        if len(fitting) != 1:
            return DomainChoice(
                None,
                problem=Problem(
                    file,
                    "$.domainName",
                    f"missing, and {len(domains)} domain packs are beside it ({_listing(domains)}); "
                    + ("several hold" if fitting else "none holds")
                    + " every type, tool and playbook this pack names: add domainName (and domainVersion)",
                ),
            )
        chosen = fitting[0]
        reason = (
            f"the only domain pack beside it holding every type, tool and playbook this pack names: "
            f"{chosen.source}"
        )
    assert isinstance(chosen.pack, DomainPack)
    versions = [p for p in domains if p.pack.domainName == chosen.pack.domainName]
    return DomainChoice(chosen.pack, reason, pin=len(versions) > 1)


def _among_copies(
    data: dict[str, Any], file: str, name: str, tenant_id: str, same: Sequence[LoadedPack]
) -> DomainChoice:
    own = [p for p in same if runtime_scope(p.source, name) == tenant_id]
    shared = [p for p in same if runtime_scope(p.source, name) is None]
    if len(own) == 1:
        chosen, reason = own[0], f"the copy of {name} stored for tenant {tenant_id}: {own[0].source}"
    elif shared:
        chosen = max(
            shared, key=lambda p: version_key(p.pack.version) if isinstance(p.pack, DomainPack) else ()
        )
        others = [p for p in same if p not in shared]
        reason = (
            f"{name} as given in {chosen.source}; the copies stored for other tenants "
            f"({', '.join(p.source for p in others)}) are not this tenant's"
        )
    else:
        fitting = [p for p in same if isinstance(p.pack, DomainPack) and fits(data, p.pack)]
        if len(fitting) != 1:
            return DomainChoice(
                None,
                problem=Problem(
                    file,
                    "$.domainName",
                    f"{len(same)} different copies of {name} are stored for other tenants ({_listing(same)}) "
                    + ("and several hold" if fitting else "and none holds")
                    + " every type, tool and playbook this pack names: add domainVersion naming one",
                ),
            )
        chosen = fitting[0]
        reason = (
            f"the only copy of {name} holding every type, tool and playbook this pack names: {chosen.source}"
        )
    assert isinstance(chosen.pack, DomainPack)
    return DomainChoice(chosen.pack, reason, pin=True)


def load_tenant(
    data: dict[str, Any],
    file: str,
    find_domain: DomainLookup,
    *,
    beside: Sequence[LoadedPack] = (),
    failed: Sequence[FailedDomain] = (),
) -> LoadedPack:
    """Validate a tenant pack document against its domain pack; raise PackError with every problem.

    ``beside`` are the domain packs loaded with it (a pack that names no domain may take one of
    them); ``failed`` the domain pack files of the same batch that did not load, so that a tenant
    pack whose domain failed reports that once instead of problems that are not its own."""
    json_only(data, file)
    choice = choose_domain(camel_case_keys(data, Notes(file)), file, find_domain, beside, failed)
    if choice.knock_on and choice.problem is not None:
        raise PackError([choice.problem])
    upgrade = upgrade_document(
        "tenant", data, file, domain=choice.domain, chosen=choice.reason, pin=choice.pin
    )
    problems = list(upgrade.problems)
    if choice.problem is not None:
        problems.append(choice.problem)
    try:
        pack = TenantPolicyPack.model_validate(upgrade.document)
    except ValidationError as exc:
        found = upgrade.located(problems_from_validation(file, exc, upgrade.document))
        if choice.domain is None:
            # The importer fills these from the domain pack; their absence is not the author's to fix.
            found = [p for p in found if p.path not in ("$.approvedBusinessProcesses", "$.domainName")]
        problems += found
        if choice.domain is None and choice.problem is None:
            problems.append(_not_loaded(data, file))
        raise PackError(sorted(set(problems))) from None
    if choice.domain is None:
        if choice.problem is None:
            problems.append(_not_loaded(data, file))
        raise PackError(sorted(set(problems)))
    problems += upgrade.located(check_tenant(pack, choice.domain, file))
    if problems:
        raise PackError(sorted(set(problems)))
    return LoadedPack("tenant", file, pack, upgrade.document, tuple(upgrade.notices))


def _not_loaded(data: dict[str, Any], file: str) -> Problem:
    name, pin = data.get("domainName"), data.get("domainVersion")
    wanted = f"{name} {pin}" if isinstance(pin, str) else str(name)
    return Problem(file, "$.domainName", f"domain pack {wanted!r} is not loaded")


def load_document(
    data: dict[str, Any],
    file: str,
    find_domain: DomainLookup,
    *,
    beside: Sequence[LoadedPack] = (),
    failed: Sequence[FailedDomain] = (),
) -> LoadedPack:
    """Load a parsed document of either kind."""
    if _kind_of(data, file) == "domain":
        return load_domain(data, file)
    return load_tenant(data, file, find_domain, beside=beside, failed=failed)


def validate_pack(
    data: dict[str, Any],
    kind: PackKind,
    file: str,
    find_domain: DomainLookup,
    *,
    allowed_networks: Iterable[Network] = (),
) -> LoadedPack:
    """The one validation every pack a person hands exops passes, however it arrives (an upload,
    ``/validate``, the UI, a pack inline in ``POST /run``): the right kind, the schema (after the
    importer), cross-references, and literal endpoints the outbound policy would refuse
    (``allowed_networks`` are the operator's). Raise PackError with every problem."""
    found = detect_kind(data)
    if found is not None and found != kind:
        raise PackError([Problem(file, "$", f"this is a {found} pack, not a {kind} pack")])
    loaded = load_domain(data, file) if kind == "domain" else load_tenant(data, file, find_domain)
    problems = endpoint_problems(loaded.pack, file, allowed_networks)
    if problems:
        raise PackError(sorted(problems))
    return loaded


def load_file(
    path: Path,
    find_domain: DomainLookup,
    *,
    beside: Sequence[LoadedPack] = (),
    failed: Sequence[FailedDomain] = (),
) -> LoadedPack:
    """Read and load one pack file of either kind."""
    return load_document(read_document(path), str(path), find_domain, beside=beside, failed=failed)


@dataclass
class LoadResult:
    packs: list[LoadedPack]
    errors: list[Problem]
    notices: list[Problem]
    kept_last_good: list[str]
    duplicates: dict[str, str] = field(default_factory=dict)
    """A file whose pack is the same as another file's → that file (loaded once)."""
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    """A pack key defined differently by several files → those files."""

    def domain(self, name: str, version: str | None = None) -> DomainPack | None:
        return find_domain([p for p in self.packs if isinstance(p.pack, DomainPack)], name, version)


def version_key(version: str) -> tuple[Any, ...]:
    """Order versions numerically where they are numbers (``1.10.0`` after ``1.9.2``); a version
    with build metadata (``1.0.0+ACME``, a copy the importer kept apart) ranks below the plain one."""
    base, plus, build = version.partition("+")
    parts = tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"[.-]", base))
    return (parts, 0 if plus else 1, build)


def find_domain(loaded: Iterable[LoadedPack], name: str, version: str | None) -> DomainPack | None:
    """The named domain pack at ``version``, or the newest version when None."""
    candidates = [p.pack for p in loaded if isinstance(p.pack, DomainPack) and p.pack.domainName == name]
    if version is not None:
        return next((p for p in candidates if p.version == version), None)
    return max(candidates, key=lambda p: version_key(p.version), default=None)


def _build_tag(tenant: str) -> str:
    return re.sub(r"[^0-9A-Za-z.-]+", "-", tenant).strip("-.") or "tenant"


def _with_version(loaded: LoadedPack, version: str, notice: Problem) -> LoadedPack:
    assert isinstance(loaded.pack, DomainPack)
    return LoadedPack(
        "domain",
        loaded.source,
        loaded.pack.model_copy(update={"version": version}),
        {**loaded.document, "version": version},
        (*loaded.notices, notice),
    )


def _settle_domains(loaded: list[LoadedPack], result: LoadResult) -> list[LoadedPack]:
    """One pack per name and version: identical copies are loaded once; different copies the earlier
    system stored per tenant get the tenant as build metadata (``1.0.0+ACME_CAPITAL``)."""
    groups: dict[str, list[LoadedPack]] = {}
    for item in loaded:
        groups.setdefault(item.key, []).append(item)
    settled: list[LoadedPack] = []
    for key, group in groups.items():
        group.sort(key=lambda p: (runtime_scope(p.source, _name(p)) is not None, p.source))
        distinct: list[LoadedPack] = []
        for item in group:
            same = next((d for d in distinct if d.document == item.document), None)
            if same is None:
                distinct.append(item)
                continue
            result.duplicates[item.source] = same.source
            result.notices.append(Problem(item.source, "$", f"the same pack as {same.source}: loaded once"))
        if len(distinct) == 1:
            settled.append(distinct[0])
            continue
        shared = [d for d in distinct if runtime_scope(d.source, _name(d)) is None]
        for other in shared[1:]:
            result.errors.append(
                Problem(other.source, "$.version", f"domain pack {key} is also defined in {shared[0].source}")
            )
            result.conflicts.setdefault(key, [shared[0].source]).append(other.source)
        settled.extend(shared[:1])
        for copy_ in distinct:
            scope = runtime_scope(copy_.source, _name(copy_))
            if scope is None:
                continue
            base = copy_.document["version"]
            version = f"{base}{'.' if '+' in base else '+'}{_build_tag(scope)}"
            others = ", ".join(d.source for d in distinct if d is not copy_)
            notice = Problem(
                copy_.source,
                "$.version",
                f"{key} also comes with other content from {others}; this copy is the one the earlier "
                f"system stored for tenant {scope}, so it became version {version} (tenant packs choosing "
                "between the copies are pinned to one with domainVersion)",
            )
            result.notices.append(notice)
            settled.append(_with_version(copy_, version, notice))
    return settled


def _name(loaded: LoadedPack) -> str:
    return loaded.pack.domainName if isinstance(loaded.pack, DomainPack) else ""


def load_many(
    files: Iterable[Path],
    *,
    fallback: DomainLookup | None = None,
    previous: Mapping[str, LoadedPack] | None = None,
) -> LoadResult:
    """Load files of both kinds: domain packs first, then tenant packs checked against them.

    ``fallback`` finds domain packs that are not among ``files``; ``previous`` holds the last good
    version of each file, kept when the file has turned bad. The same pack in several files is
    loaded once; a pack key defined differently by several files is an error on the later ones."""
    files = list(files)
    kinds = {path: peek_kind(path) for path in files}
    result = LoadResult([], [], [], [])

    def lookup(name: str, version: str | None) -> DomainPack | None:
        found = result.domain(name, version)
        return found if found is not None or fallback is None else fallback(name, version)

    def attempt(path: Path, **context: Any) -> LoadedPack | None:
        file = str(path)
        try:
            loaded = load_file(path, lookup, **context)
        except PackError as exc:
            result.errors.extend(exc.problems)
            kept = (previous or {}).get(file)
            if kept is not None:
                result.kept_last_good.append(file)
            return kept
        result.notices.extend(loaded.notices)
        return loaded

    domain_files = sorted((p for p in files if kinds[p] == "domain"), key=str)
    other_files = sorted((p for p in files if kinds[p] != "domain"), key=str)
    domains: list[LoadedPack] = []
    failed: list[FailedDomain] = []
    for path in domain_files:
        loaded = attempt(path)
        if loaded is None:
            failed.append(FailedDomain(_peek_name(path), str(path)))
        else:
            domains.append(loaded)
    result.packs.extend(_settle_domains(domains, result))
    beside = list(result.packs)
    tenants: dict[str, list[LoadedPack]] = {}
    for path in other_files:
        loaded = attempt(path, beside=beside, failed=failed)
        if loaded is None:
            continue
        twin = next((key for key in tenants if key != loaded.key and key.lower() == loaded.key.lower()), None)
        if twin is not None:
            result.errors.append(
                Problem(
                    loaded.source,
                    "$.tenantId",
                    f"tenant {loaded.key} differs only in case from tenant {twin} in {tenants[twin][0].source}: "
                    "two tenants whose ids differ only in case are refused; rename one",
                )
            )
            continue
        variants = tenants.setdefault(loaded.key, [])
        same = next((v for v in variants if v.document == loaded.document), None)
        if not variants:
            result.packs.append(loaded)
        elif same is not None:
            result.duplicates[loaded.source] = same.source
            result.notices.append(Problem(loaded.source, "$", f"the same pack as {same.source}: loaded once"))
            continue
        else:
            others = ", ".join(v.source for v in variants)
            result.errors.append(
                Problem(
                    loaded.source,
                    "$.tenantId",
                    f"tenant pack {loaded.key} is also defined, differently, in {others}",
                )
            )
            result.conflicts.setdefault(f"tenant:{loaded.key}", [variants[0].source]).append(loaded.source)
        variants.append(loaded)
    return result


def _peek_name(path: Path) -> str | None:
    try:
        data = read_document(path)
    except PackError:
        return None
    name = data.get("domainName", data.get("domain_name"))
    return name if isinstance(name, str) else None


def peek_kind(path: Path) -> PackKind | None:
    """The kind of a pack file, or None when it cannot be read or told; never raises."""
    try:
        return detect_kind(read_document(path))
    except PackError:
        return None
