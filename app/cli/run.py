"""``exops run`` (a batch of exceptions through the graph) and ``exops resume`` (answer a waiting case)."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli.output import console, errors
from app.runtime import ConfigurationError, Runtime, ToolMode
from app.settings import Settings, get_settings
from graph.builder import build_graph
from graph.checkpoint import open_checkpointer
from graph.inputs import RawException
from graph.runner import CaseRunner, InvalidAnswer, NothingPending
from packs.documents import parse_document
from packs.problems import PackError
from packs.registry import PackRegistry

PacksOption = Annotated[
    Path | None, typer.Option("--packs", help="Folder of packs (default: EXOPS_PACKS_DIR).")
]
CheckpointOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoints", help="SQLite checkpoint file (default: EXOPS_DATA_DIR/checkpoints.sqlite)."
    ),
]


class InputFileError(ValueError):
    """The exceptions file cannot be used at all (unreadable, not JSON/YAML, not a list)."""


def read_exceptions(path: Path) -> list[Any]:
    """A list of raw exceptions, or ``{"exceptions": [...]}``, in JSON or YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read: {exc.strerror}") from None
    if text.lstrip().startswith("["):
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputFileError(
                f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    else:
        try:
            data = parse_document(text, str(path))
        except PackError as exc:
            raise InputFileError(str(exc.problems[0])) from None
        data = data.get("exceptions")
    if not isinstance(data, list):
        raise InputFileError(f'{path}: expected a list of exceptions or {{"exceptions": [...]}}')
    return data


def _validate_items(
    items: list[Any], tenant_id: str
) -> tuple[list[RawException | None], list[dict[str, Any]]]:
    valid: list[RawException | None] = []
    invalid: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            raw = RawException.model_validate(item)
            if raw.tenantId not in (None, tenant_id):
                raise ValueError(f"tenantId {raw.tenantId!r} does not match --tenant {tenant_id!r}")
        except (ValidationError, ValueError) as exc:
            problems = (
                [
                    {"path": f"[{index}]." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in exc.errors()
                ]
                if isinstance(exc, ValidationError)
                else [{"path": f"[{index}].tenantId", "message": str(exc)}]
            )
            invalid.append({"index": index, "problems": problems})
            valid.append(None)
            continue
        valid.append(raw)
    return valid, invalid


async def _run(
    settings: Settings, runtime: Runtime, tenant_id: str, raws: list[RawException], *, tool_mode: ToolMode,
    checkpoints: Path, concurrency: int, quiet: bool, with_audit: bool = False,
) -> tuple[str, list[dict[str, Any]]]:  # fmt: skip
    run_id = f"RUN-{uuid.uuid4().hex[:12].upper()}"
    async with AsyncExitStack() as stack:
        saver = await stack.enter_async_context(open_checkpointer("sqlite", checkpoints))
        runner = CaseRunner(build_graph(checkpointer=saver), durability=settings.checkpoint_durability)
        context = runtime.context(tenant_id, tool_mode=tool_mode, run_id=run_id)
        progress = Progress(
            TextColumn("[bold]running"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=errors, disable=quiet, transient=True,
        )  # fmt: skip
        with progress:
            task = progress.add_task("cases", total=len(raws))
            results = await runner.run_batch(
                lambda _raw: context, raws, concurrency=concurrency, on_done=lambda _r: progress.advance(task)
            )
        if with_audit:
            for result in results:
                values = await runner.values(tenant_id, str(result["exceptionId"]))
                result["auditTrail"] = values.get("audit", [])
    return run_id, results


def _summary_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="Results")
    for column in ("exceptionId", "type", "severity", "actionability", "playbook", "approval", "status"):
        table.add_column(column)
    for r in results:
        if "problems" in r:
            table.add_row(
                str(r.get("exceptionId") or f"item {r['index']}"), "-", "-", "invalid input", "-", "-", "-"
            )
            continue
        table.add_row(
            str(r.get("exceptionId")), str(r.get("exceptionType")), str(r.get("severity")),
            str(r.get("actionability")), str(r.get("selectedPlaybookId") or r.get("recommendedPlaybookId") or "-"),
            str(r.get("approvalId") or "-"), str(r.get("resolutionStatus")),
        )  # fmt: skip
    return table


def run(
    file: Annotated[
        Path, typer.Argument(help='JSON/YAML: a list of raw exceptions or {"exceptions": [...]}.')
    ],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id whose policy pack applies.")],
    packs: PacksOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print only the JSON result.")] = False,
    tool_mode: Annotated[str, typer.Option("--tool-mode", help="dry-run (default) or live.")] = "dry-run",
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, max=64)] = None,
    checkpoints: CheckpointOption = None,
    audit: Annotated[
        bool, typer.Option("--audit", help="Add each case's audit trail (tool calls, notifications...).")
    ] = False,
) -> None:
    """Run exceptions through the graph and print {tenantId, runId, results} in input order.

    With --tool-mode live, call_tool steps reach the endpoints the domain pack declares (secrets from
    EXOPS_SECRETS; private addresses only if EXOPS_OUTBOUND_ALLOWED_NETWORKS allows them)."""
    if tool_mode not in ("dry-run", "live"):
        raise typer.BadParameter("--tool-mode must be dry-run or live")
    settings = get_settings()
    registry = PackRegistry.from_directory(packs or settings.packs_dir)
    runtime = Runtime(settings, registry)
    try:
        runtime.context(tenant)
    except ConfigurationError as exc:
        errors.print(str(exc), style="red", markup=False)
        load_problems = sorted(p for items in registry.errors.values() for p in items)
        if load_problems:  # the pack may be there and not load: say why
            errors.print(f"these pack files in {registry.root} did not load:", style="red")
            for problem in load_problems:
                errors.print(str(problem), markup=False)
        raise typer.Exit(2) from None
    try:
        items = read_exceptions(file)
    except InputFileError as exc:
        errors.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    valid, invalid = _validate_items(items, tenant)
    mode: ToolMode = "live" if tool_mode == "live" else "dry-run"
    raws = [raw for raw in valid if raw is not None]
    run_id, results = asyncio.run(
        _run(settings, runtime, tenant, raws, tool_mode=mode, checkpoints=checkpoints or settings.cli_checkpoint_path,
             concurrency=concurrency or settings.run_concurrency, quiet=json_output, with_audit=audit)
    )  # fmt: skip
    ordered: list[dict[str, Any]] = []
    done = iter(results)
    problems = iter(invalid)
    for raw in valid:
        ordered.append(next(done) if raw is not None else {"error": "invalid input", **next(problems)})
    if not json_output:
        errors.print(_summary_table(ordered))
    console.print_json(json.dumps({"tenantId": tenant, "runId": run_id, "results": ordered}, default=str))
    if invalid:
        errors.print(f"{len(invalid)} invalid exception(s) not run", style="red")
        raise typer.Exit(1)


def resume(
    exception_id: Annotated[str, typer.Argument(help="The waiting case.")],
    tenant: Annotated[str, typer.Option("--tenant")],
    actor: Annotated[str, typer.Option("--actor", help="Who decides.")],
    decision: Annotated[
        str,
        typer.Option(
            "--decision", help="approve | reject | comment (approvals); complete | skip (manual steps)"
        ),
    ],
    comment: Annotated[str | None, typer.Option("--comment", help="Comment or step notes.")] = None,
    packs: PacksOption = None,
    checkpoints: CheckpointOption = None,
) -> None:
    """Answer a case waiting for an approval or a manual step, and continue its run."""
    settings = get_settings()
    runtime = Runtime(settings, PackRegistry.from_directory(packs or settings.packs_dir))
    expect: Literal["approval", "manual_step"]
    if decision in ("complete", "skip"):
        expect, answer = "manual_step", {"action": decision, "actor": actor, "notes": comment}
    else:
        expect, answer = "approval", {"decision": decision, "actor": actor, "comment": comment}

    async def go() -> dict[str, Any]:
        async with open_checkpointer("sqlite", checkpoints or settings.cli_checkpoint_path) as saver:
            runner = CaseRunner(build_graph(checkpointer=saver), durability=settings.checkpoint_durability)
            return await runner.resume(runtime.context(tenant), exception_id, answer, expect=expect)

    try:
        result = asyncio.run(go())
    except (NothingPending, ConfigurationError) as exc:
        errors.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    except InvalidAnswer as exc:
        errors.print(f"{exc}: {exc.errors}", style="red", markup=False)
        raise typer.Exit(1) from None
    console.print_json(json.dumps(result, default=str))
