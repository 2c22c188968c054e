"""``exops packs ...``: validate, test, import, list packs and print their JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from app.cli.output import console, errors, print_notices, print_problems
from app.settings import get_settings
from packs.documents import detect_kind, pack_files, read_document
from packs.domain import DomainPack
from packs.fallbacks import with_earlier_fallbacks
from packs.importer import upgrade_document
from packs.loader import load_document, load_many
from packs.problems import PackError, Problem
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
    """Check packs; one line per problem (FILE: JSON.PATH: message), exit 1 when there is any."""
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
            raise typer.Exit(2)
        if tenant_pack.domainName != domain.domainName:
            errors.print(
                f"tenant {tenant!r} runs domain {tenant_pack.domainName!r}, not {domain.domainName!r}"
            )
            raise typer.Exit(2)
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
            console.print(f"    {diff.field}: expected {diff.expected!r}, got {diff.actual!r}", markup=False)
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
        known = ", ".join(p.key for p in registry.domains()) or "none"
        errors.print(
            f"{value}: no such file, and no domain pack of that name in {registry.root} (loaded: {known})"
        )
        raise typer.Exit(2)
    return domain


@packs_app.command("import")
def import_pack(
    source: Annotated[Path, typer.Argument(help="A pack in an older layout.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here (.json or .yaml).")
    ] = None,
    packs: PacksDir = None,
    legacy_behaviour: Annotated[
        bool,
        typer.Option(
            "--legacy-behaviour",
            help="Decide as the earlier system did where the pack says nothing: severity guessed from the "
            "type name when no rule matches, a type without a playbook information only (sets the domain "
            "pack's fallbacks; see docs/migration.md).",
        ),
    ] = False,
) -> None:
    """Rewrite a pack from an older layout into the current one, saying what changed."""
    try:
        data = read_document(source)
    except PackError as exc:
        print_problems(exc.problems)
        raise typer.Exit(1) from None
    kind = detect_kind(data)
    if kind is None:
        print_problems(
            [
                Problem(
                    str(source), "$", "cannot tell the pack kind (no domainName/exceptionTypes or tenantId)"
                )
            ]
        )
        raise typer.Exit(1)
    domain = None
    if kind == "tenant":
        siblings = [p for p in pack_files(source.parent) if p != source]
        fallback_dir = _packs_dir(packs)
        fallback = PackRegistry.from_directory(fallback_dir).domain if fallback_dir.exists() else None
        nearby = load_many(siblings, fallback=fallback)
        name, pin = data.get("domainName"), data.get("domainVersion")
        if isinstance(name, str):
            domain = nearby.domain(name, pin if isinstance(pin, str) else None) or (
                fallback(name, pin if isinstance(pin, str) else None) if fallback else None
            )
    upgraded, notices = upgrade_document(kind, data, str(source), domain=domain)
    if legacy_behaviour and kind == "domain":
        upgraded, notice = with_earlier_fallbacks(upgraded, str(source))
        notices = [*notices, notice]
    elif legacy_behaviour:
        errors.print(f"{source}: --legacy-behaviour sets a domain pack's fallbacks; a tenant pack has none")
    print_notices(notices)
    if not notices:
        errors.print(f"{source}: already in the current layout")
    fmt = _format_for(output or source)
    text = (
        json.dumps(upgraded, indent=2) + "\n" if fmt == "json" else yaml.safe_dump(upgraded, sort_keys=False)
    )
    # Validate what we are about to write, so the output is a pack exops accepts.
    try:
        load_document(upgraded, str(output or source), lambda n, v: domain)
    except PackError as exc:
        print_problems(exc.problems)
        errors.print("the rewritten pack still has problems; nothing written", style="red")
        raise typer.Exit(1) from None
    if output is None:
        console.print(text, markup=False, end="")
    else:
        output.write_text(text, encoding="utf-8")
        errors.print(f"wrote {output} ({len(notices)} change(s))")


def _format_for(path: Path) -> Literal["json", "yaml"]:
    return "json" if path.suffix.lower() == ".json" else "yaml"


@packs_app.command("schema")
def schema(kind: Annotated[str, typer.Argument(help="domain or tenant")]) -> None:
    """Print the JSON Schema of a pack kind."""
    if kind not in ("domain", "tenant"):
        errors.print(f"unknown pack kind {kind!r}: use 'domain' or 'tenant'", style="red")
        raise typer.Exit(2)
    console.print(render_schema("domain" if kind == "domain" else "tenant"), markup=False, end="")
