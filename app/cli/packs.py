"""``exops packs ...``: validate, test, import, list packs and print their JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from app.cli.output import console, errors, print_notices, print_problems
from app.settings import get_settings
from packs.addresses import parse_networks
from packs.documents import pack_files
from packs.domain import DomainPack
from packs.endpoints import endpoint_problems
from packs.fallbacks import with_earlier_fallbacks
from packs.loader import DomainLookup, LoadedPack, LoadResult, load_many, peek_kind
from packs.problems import Problem
from packs.registry import PackRegistry
from packs.schema import render_schema
from packs.suite_runner import run_suites

packs_app = typer.Typer(
    help="Validate, test, import and inspect domain and tenant packs.", no_args_is_help=True
)

PacksDir = Annotated[
    Path | None, typer.Option("--packs", help="Folder of packs (default: EXOPS_PACKS_DIR, else the samples).")
]


def _packs_dir(value: Path | None) -> Path:
    return value if value is not None else get_settings().packs_dir


@packs_app.command("validate")
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Pack files or folders.")],
    packs: PacksDir = None,
) -> None:
    """Check packs; one line per problem (FILE: JSON.PATH: message), exit 1 when there is any.
    Endpoints are checked as an upload checks them, with EXOPS_OUTBOUND_ALLOWED_NETWORKS."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if not path.exists():
            problems.append(Problem(str(path), "$", "no such file or folder"))
            continue
        found = pack_files(path)
        if path.is_dir() and not found:
            problems.append(Problem(str(path), "$", "no pack files (.json, .yaml, .yml) in this folder"))
        files.extend(found)
    fallback_dir = _packs_dir(packs)
    fallback = PackRegistry.from_directory(fallback_dir) if fallback_dir.exists() else None
    result = load_many(files, fallback=fallback.domain if fallback else None)
    print_notices(result.notices)
    problems.extend(result.errors)
    networks = parse_networks(get_settings().outbound_allowed_networks)
    for loaded in result.packs:
        problems.extend(endpoint_problems(loaded.pack, loaded.source, networks))
    if print_problems(sorted(problems)):
        errors.print(f"{len(problems)} problem(s) in {len(files)} file(s)", style="red")
        raise typer.Exit(1)
    domains = sum(p.kind == "domain" for p in result.packs)
    console.print(
        f"[green]ok[/green]: {len(result.packs)} pack(s) valid ({domains} domain, {len(result.packs) - domains} tenant)"
    )


@packs_app.command("list")
def list_packs(packs: PacksDir = None) -> None:
    """Show the packs of a folder with what each holds."""
    registry = PackRegistry.from_directory(_packs_dir(packs))
    table = Table(title=f"Domain packs in {registry.root}")
    for column in ("domain", "version", "types", "rules", "tools", "playbooks", "test cases", "file"):
        table.add_column(column)
    for loaded in registry.domains():
        d = loaded.pack
        assert isinstance(d, DomainPack)
        cases = sum(len(s.cases) for s in d.testSuites)
        table.add_row(
            d.domainName,
            d.version,
            str(len(d.exceptionTypes)),
            str(len(d.severityRules)),
            str(len(d.tools)),
            str(len(d.playbooks)),
            str(cases),
            loaded.source,
        )
    console.print(table)
    tenants = Table(title="Tenant policy packs")
    for column in ("tenant", "name", "domain", "approved playbooks", "allowed tools", "file"):
        tenants.add_column(column)
    for loaded in registry.tenants():
        t = loaded.pack
        assert not isinstance(t, DomainPack)
        tenants.add_row(
            t.tenantId,
            t.tenantName,
            t.domainName,
            str(len(t.approvedBusinessProcesses)),
            str(len(t.toolsAllowList)),
            loaded.source,
        )
    console.print(tenants)
    if registry.errors:
        print_problems(p for items in registry.errors.values() for p in items)
        raise typer.Exit(1)


def _relative(source: str, root: Path) -> str:
    path = Path(source)
    return str(path.relative_to(root)) if path.is_relative_to(root) else source


@packs_app.command("test")
def test(
    domain_pack: Annotated[str, typer.Argument(help="A domain pack file, or the name of a loaded domain.")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Run the cases under this tenant's policy.")
    ] = None,
    packs: PacksDir = None,
    through_graph: Annotated[
        bool, typer.Option("--graph", help="Run each case through the whole agent graph (dry-run tools).")
    ] = False,
) -> None:
    """Run a domain pack's test suites; exit 0 only if every case passes."""
    registry = PackRegistry.from_directory(_packs_dir(packs))
    domain = _domain_argument(domain_pack, registry)
    tenant_pack = None
    if tenant is not None:
        tenant_pack = registry.tenant(tenant)
        if tenant_pack is None:
            errors.print(f"tenant {tenant!r} is not in {registry.root}", style="red")
            _print_load_problems(registry)
            raise typer.Exit(2)
        if tenant_pack.domainName != domain.domainName:
            errors.print(
                f"tenant {tenant!r} runs domain {tenant_pack.domainName!r}, not {domain.domainName!r}"
            )
            raise typer.Exit(2)
        pinned = tenant_pack.domainVersion
        if pinned is not None and pinned != domain.version:
            if Path(domain_pack).is_file() or "@" in domain_pack:
                errors.print(f"tenant {tenant!r} runs {domain.domainName} {pinned}, not {domain.version}")
                raise typer.Exit(2)
            domain = registry.domain_of(tenant_pack)  # a bare name means the tenant's version
    if through_graph:
        from app.runtime import Runtime
        from graph.suites import run_suites_through_graph_sync

        runtime = Runtime(get_settings(), registry)
        results = run_suites_through_graph_sync(
            domain, lambda t: runtime.context_for(t, domain), tenant=tenant_pack, find_tenant=registry.tenant
        )
    else:
        results = run_suites(domain, tenant=tenant_pack, find_tenant=registry.tenant)
    if not results:
        errors.print(f"{domain.domainName} {domain.version} has no test cases", style="red")
        raise typer.Exit(1)
    for result in results:
        label = escape(f"{result.suite_id}/{result.case_id} [{result.tenant_id}]")
        if result.passed:
            console.print(f"[green]PASS[/green] {label}")
            continue
        console.print(f"[red]FAIL[/red] {label}")
        if result.error:
            console.print(f"    error: {result.error}", markup=False)
        for diff in result.differences:
            because = f" ({diff.reason})" if diff.reason else ""
            console.print(
                f"    {diff.field}: expected {diff.expected!r}, got {diff.actual!r}{because}", markup=False
            )
    failed = sum(not r.passed for r in results)
    summary = f"{len(results) - failed} passed, {failed} failed"
    console.print(f"[{'red' if failed else 'green'}]{summary}[/]")
    if failed:
        raise typer.Exit(1)


def _domain_argument(value: str, registry: PackRegistry) -> DomainPack:
    path = Path(value)
    if path.is_file():
        result = load_many([path], fallback=registry.domain)
        if result.errors:
            print_problems(result.errors)
            raise typer.Exit(1)
        pack = result.packs[0].pack
        if not isinstance(pack, DomainPack):
            errors.print(f"{value}: is a tenant policy pack; give its domain pack", style="red")
            raise typer.Exit(2)
        return pack
    name, _, version = value.partition("@")
    domain = registry.domain(name, version or None)
    if domain is None:
        if _print_load_problems(registry):
            errors.print(
                f"{value}: no such file, and no domain pack of that name loaded from {registry.root}"
            )
        else:
            known = ", ".join(p.key for p in registry.domains()) or "none"
            errors.print(
                f"{value}: no such file, and no domain pack of that name in {registry.root} (loaded: {known})"
            )
        raise typer.Exit(2)
    return domain


def _print_load_problems(registry: PackRegistry) -> int:
    """The problems of the pack files that did not load (so a missing pack says why); how many."""
    problems = sorted(p for items in registry.errors.values() for p in items)
    if problems:
        errors.print(f"these pack files in {registry.root} did not load:", style="red")
        print_problems(problems)
    return len(problems)


@packs_app.command("import")
def import_pack(
    source: Annotated[
        Path,
        typer.Argument(
            help="A pack in an older layout, or a folder of them (domain and tenant packs mixed)."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Write here: a file (.json or .yaml) for one pack, a folder for a folder."
        ),
    ] = None,
    packs: PacksDir = None,
    legacy_behaviour: Annotated[
        bool,
        typer.Option(
            "--legacy-behaviour",
            help="Decide as the earlier system did where a domain pack says nothing: severity guessed from "
            "the type name when no rule matches, a type without a playbook information only (writes the "
            "domain pack's fallbacks; see docs/migration.md).",
        ),
    ] = False,
) -> None:
    """Rewrite packs from older layouts into the current one, saying what changed and what was assumed."""
    if not source.exists():
        print_problems([Problem(str(source), "$", "no such file or folder")])
        raise typer.Exit(1)
    fallback_dir = _packs_dir(packs)
    fallback = PackRegistry.from_directory(fallback_dir).domain if fallback_dir.exists() else None
    if source.is_dir():
        if output is None:
            errors.print("importing a folder needs -o OUTDIR, the folder to write the packs to", style="red")
            raise typer.Exit(2)
        _import_folder(source, output, fallback, legacy_behaviour=legacy_behaviour)
        return
    _import_file(source, output, fallback, legacy_behaviour=legacy_behaviour)


def _dump(document: dict[str, Any], fmt: Literal["json", "yaml"]) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _with_fallbacks(loaded: LoadedPack, legacy_behaviour: bool) -> tuple[dict[str, Any], list[Problem]]:
    """The document to write and its notices, with the earlier system's fallbacks when asked for."""
    if not legacy_behaviour or not isinstance(loaded.pack, DomainPack):
        return loaded.document, list(loaded.notices)
    document, notice = with_earlier_fallbacks(loaded.document, loaded.source)
    return document, [*loaded.notices, notice]


def _import_file(
    source: Path, output: Path | None, fallback: DomainLookup | None, *, legacy_behaviour: bool = False
) -> None:
    batch = [source]
    if peek_kind(source) == "tenant":
        batch += [p for p in pack_files(source.parent) if p != source and peek_kind(p) == "domain"]
    result = load_many(batch, fallback=fallback)
    loaded = next((p for p in result.packs if p.source == str(source)), None)
    if loaded is None:
        own = [e for e in result.errors if e.file == str(source)]
        causes = [e for e in result.errors if e.file != str(source) and any(e.file in o.message for o in own)]
        print_problems(sorted(own) + sorted(causes))
        errors.print(f"{source}: cannot be imported as written; nothing written", style="red")
        raise typer.Exit(1)
    document, notices = _with_fallbacks(loaded, legacy_behaviour)
    if legacy_behaviour and not isinstance(loaded.pack, DomainPack):
        errors.print(f"{source}: --legacy-behaviour sets a domain pack's fallbacks; a tenant pack has none")
    print_notices(notices)
    if not notices:
        errors.print(f"{source}: already in the current layout")
    text = _dump(document, _format_for(output or source))
    if output is None:
        console.print(text, markup=False, end="")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    errors.print(f"wrote {output} ({len(notices)} notice(s))")


def _target(loaded: LoadedPack, source: Path) -> Path:
    suffix = ".json" if source.suffix.lower() == ".json" else ".yaml"
    if isinstance(loaded.pack, DomainPack):
        return Path("domains") / f"{loaded.pack.domainName}-{loaded.pack.version}{suffix}"
    return Path("tenants") / f"{loaded.pack.tenantId}{suffix}"


def _import_folder(
    source: Path, output: Path, fallback: DomainLookup | None, *, legacy_behaviour: bool = False
) -> None:
    target = output.resolve()
    files = [p for p in pack_files(source) if not p.resolve().is_relative_to(target)]  # not a rerun's output
    if not files:
        print_problems([Problem(str(source), "$", "no pack files (.json, .yaml, .yml) in this folder")])
        raise typer.Exit(1)
    result = load_many(files, fallback=fallback)
    conflicted = {file for sources in result.conflicts.values() for file in sources}
    written: dict[str, Path] = {}
    for loaded in result.packs:
        if loaded.source in conflicted:
            continue
        target = output / _target(loaded, Path(loaded.source))
        target.parent.mkdir(parents=True, exist_ok=True)
        document, notices = _with_fallbacks(loaded, legacy_behaviour)
        result.notices.extend(notices[len(loaded.notices) :])
        target.write_text(_dump(document, _format_for(target)), encoding="utf-8")
        written[loaded.source] = target
    problems = sorted(set(result.errors))
    for key, sources in result.conflicts.items():
        for file in sources:
            if file not in {p.file for p in problems}:
                others = ", ".join(f for f in sources if f != file)
                problems.append(
                    Problem(
                        file,
                        "$",
                        f"not written: {key.replace(':', ' pack ', 1)} is defined differently in {others}; "
                        "keep one of them, or import them separately",
                    )
                )
    lines = _summary(files, written, result, problems)
    (output / "IMPORT-NOTES.md").write_text(
        f"# Imported from {source}\n\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    for line in lines:  # headings on the terminal, with the notices that ask for something
        if line.startswith("## "):
            errors.print(line[3:], markup=False)
        elif "EXOPS_SECRETS" in line or "EXOPS_SMTP" in line:
            errors.print(f"  to do: {line[2:]}", markup=False, style="yellow")
    # What was written must be current: importing it again changes nothing and says nothing.
    again = load_many(sorted(written.values()), fallback=fallback)
    unexpected = [*again.errors, *again.notices]
    if unexpected:
        print_problems(unexpected)
        errors.print("the written packs do not import again unchanged (a bug in exops: please report it)")
        raise typer.Exit(1)
    errors.print(
        f"wrote {len(written)} pack(s) to {output} (summary: {output / 'IMPORT-NOTES.md'})",
        style="green" if not problems else None,
    )
    if problems:
        print_problems(sorted(set(problems)))
        copies = sum(twin in written for twin in result.duplicates.values())
        errors.print(f"{len(files) - len(written) - copies} file(s) not imported", style="red")
        raise typer.Exit(1)


def _summary(
    files: list[Path], written: dict[str, Path], result: LoadResult, problems: list[Problem]
) -> list[str]:
    """A section per source file: where it went and every notice about it, or why it did not."""
    notices: dict[str, list[Problem]] = {}
    for notice in result.notices:
        notices.setdefault(notice.file, []).append(notice)
    failing: dict[str, list[Problem]] = {}
    for problem in problems:
        failing.setdefault(problem.file, []).append(problem)
    lines: list[str] = []
    for path in files:
        file = str(path)
        if file in written:
            own = notices.get(file, [])
            lines.append(f"## {file} → {written[file]} ({len(own)} notice(s))")
            lines += [f"- `{n.path}`: {n.message}" for n in own]
        elif file in result.duplicates:
            twin = result.duplicates[file]
            fate = "written once" if twin in written else "not imported either"
            lines.append(f"## {file}: the same pack as {twin}, {fate}")
        else:
            lines.append(f"## {file}: not imported")
            lines += [f"- `{p.path}`: {p.message}" for p in failing.get(file, [])]
        lines.append("")
    return lines


def _format_for(path: Path) -> Literal["json", "yaml"]:
    return "json" if path.suffix.lower() == ".json" else "yaml"


@packs_app.command("schema")
def schema(kind: Annotated[str, typer.Argument(help="domain or tenant")]) -> None:
    """Print the JSON Schema of a pack kind."""
    if kind not in ("domain", "tenant"):
        errors.print(f"unknown pack kind {kind!r}: use 'domain' or 'tenant'", style="red")
        raise typer.Exit(2)
    console.print(render_schema("domain" if kind == "domain" else "tenant"), markup=False, end="")
