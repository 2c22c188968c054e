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
from graph.events import MemoryEventSink
from graph.inputs import RawException
from graph.runner import CaseRunner, InvalidAnswer, NothingPending
from packs.documents import parse_value
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
    try:  # the pack parser's limits hold here too (nesting, NaN, YAML types and aliases)
        data: Any = parse_value(text, str(path))
    except PackError as exc:
        first = exc.problems[0]
        where = "" if first.path == "$" else f"{first.path}: "
        raise InputFileError(f"{first.file}: {where}{first.message}") from None
    if isinstance(data, dict):
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
        runner = CaseRunner(
            build_graph(checkpointer=saver),
            durability=settings.checkpoint_durability,
            compaction="keep_latest",
        )
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
        if with_audit:  # the events this command's runs recorded (kept in memory: there are no tables)
            sink = context.events
            assert isinstance(sink, MemoryEventSink)
            for result in results:
                result["auditTrail"] = sink.trail(tenant_id, str(result["exceptionId"]))
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
        bool,
        typer.Option(
            "--audit",
            help="Add each case's audit trail (tool calls, notifications...) as this command recorded it: "
            "a case already run by an earlier command is reported from its checkpoint, without one.",
        ),
    ] = False,
) -> None:
    """Run exceptions through the graph and print {tenantId, runId, results} in input order.

    The checkpoint file is the record here: a finished case keeps its last checkpoint (the earlier
    ones are pruned), so running the same exception again reports it instead of running it twice.

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


APPROVAL_DECISIONS = ("approve", "reject", "comment", "takeover")
STEP_ACTIONS = ("complete", "skip")
NO_PLAN_HINT = (
    "The ways on: --decision reject --reason '...' (with no plan proposed the case escalates), "
    "--decision takeover (the case stays open, assigned to --actor, and nothing runs on its own), "
    "or approve an edited plan through the API or the UI."
)


def _answer(
    decision: str, actor: str, comment: str | None, reason: str | None
) -> tuple[Literal["approval", "manual_step"], dict[str, Any]]:
    """What the graph is asked to take; a rejection or a skip without a reason never reaches it."""
    if decision not in (*APPROVAL_DECISIONS, *STEP_ACTIONS):
        raise typer.BadParameter(
            f"--decision is one of {', '.join(APPROVAL_DECISIONS)} (approvals) or {', '.join(STEP_ACTIONS)} "
            "(manual steps)"
        )
    if decision in ("reject", "skip") and not (reason or "").strip():
        raise typer.BadParameter(f"--decision {decision} needs --reason (saying why; blank is not a reason)")
    if decision in STEP_ACTIONS:
        return "manual_step", {"action": decision, "actor": actor, "notes": comment, "reason": reason}
    return "approval", {"decision": decision, "actor": actor, "comment": comment, "reason": reason}


def resume(
    exception_id: Annotated[str, typer.Argument(help="The waiting case.")],
    tenant: Annotated[str, typer.Option("--tenant")],
    actor: Annotated[str, typer.Option("--actor", help="Who decides.")],
    decision: Annotated[
        str,
        typer.Option(
            "--decision",
            help="approve | reject | comment | takeover (approvals); complete | skip (manual steps)",
        ),
    ],
    comment: Annotated[str | None, typer.Option("--comment", help="Comment or step notes.")] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why: required with reject and skip.")
    ] = None,
    packs: PacksOption = None,
    checkpoints: CheckpointOption = None,
) -> None:
    """Answer a case waiting for an approval or a manual step, and continue its run.

    An approval that proposes no plan cannot be approved: reject it (--reason), or take the case over
    (takeover: it stays open, assigned to --actor, with one manual step for them)."""
    settings = get_settings()
    runtime = Runtime(settings, PackRegistry.from_directory(packs or settings.packs_dir))
    expect, answer = _answer(decision, actor, comment, reason)

    async def go() -> dict[str, Any]:
        async with open_checkpointer("sqlite", checkpoints or settings.cli_checkpoint_path) as saver:
            runner = CaseRunner(
                build_graph(checkpointer=saver),
                durability=settings.checkpoint_durability,
                compaction="keep_latest",
            )
            return await runner.resume(runtime.context(tenant), exception_id, answer, expect=expect)

    try:
        result = asyncio.run(go())
    except (NothingPending, ConfigurationError) as exc:
        errors.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    except InvalidAnswer as exc:
        errors.print(f"{exc}: {exc.errors}", style="red", markup=False)
        raise typer.Exit(1) from None
    pending = result.get("pending") or {}
    if decision == "approve" and pending.get("kind") == "approval" and pending.get("refusals"):
        errors.print(f"{pending['refusals'][-1]}. {NO_PLAN_HINT}", style="red", markup=False)
        console.print_json(json.dumps(result, default=str))
        raise typer.Exit(1)
    console.print_json(json.dumps(result, default=str))
