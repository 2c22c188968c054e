"""``exops eval ...``: score datasets, compare runs, gate CI, export decided cases, what-if a pack.

Heavy modules (the graph, the eval suite) are imported inside the commands so ``exops --help`` and
every other command start fast. Errors name the file and the field and exit with ``EXIT_ERROR`` (3);
the gate's codes are in ``evals.compare`` and docs/evals.md.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from app.cli.output import console, errors

eval_app = typer.Typer(help="Score prompts, models and policies on labelled cases.", no_args_is_help=True)
dataset_app = typer.Typer(help="Build eval datasets.", no_args_is_help=True)
eval_app.add_typer(dataset_app, name="dataset")

EXIT_ERROR = 3


def _fail(message: str) -> typer.Exit:
    errors.print(f"error: {message}", markup=False)
    return typer.Exit(EXIT_ERROR)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


@eval_app.command("run")
def run(
    datasets: Annotated[
        list[Path] | None, typer.Argument(help="Dataset files or folders (default: evals/datasets).")
    ] = None,
    target: Annotated[
        list[str] | None, typer.Option("--target", help="graph, or prompt:ID@VERSION; repeatable.")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Model name; repeatable (a matrix). None: rules only.")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint (default EXOPS_LLM_BASE_URL).")
    ] = None,
    provider: Annotated[
        Literal["replay", "live", "record"], typer.Option(help="Where LLM answers come from.")
    ] = "replay",
    cassettes: Annotated[Path | None, typer.Option(help="Cassette folder (default evals/cassettes).")] = None,
    prompts_dir: Annotated[
        Path | None, typer.Option("--prompts", help="Folder of candidate prompt templates.")
    ] = None,
    suites: Annotated[bool, typer.Option(help="Also score the domain packs' own test suites.")] = False,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only cases with this tag; repeatable (any of them).")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Run every case this many times.")] = 1,
    judge_model: Annotated[
        str | None, typer.Option(help="Pinned model for the LLM judge (cases with a rubric).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default var/evals/<run id>).")] = None,
    gate: Annotated[
        bool, typer.Option(help="Exit 1 on a failed threshold, 2 on a regression against the baseline.")
    ] = False,
    baseline: Annotated[
        Path | None, typer.Option(help="A run to gate against (default: evals/baselines).")
    ] = None,
    min_pass_rate: Annotated[float | None, typer.Option(help="Gate threshold on the pass rate.")] = None,
    update_baseline: Annotated[
        bool, typer.Option(help="Write this run's outcomes as the committed baselines.")
    ] = False,
    price_in: Annotated[float, typer.Option(help="Cost per million prompt tokens.")] = 0.0,
    price_out: Annotated[float, typer.Option(help="Cost per million completion tokens.")] = 0.0,
    packs: Annotated[Path | None, typer.Option(help="Pack folder (default EXOPS_PACKS_DIR).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the headline as one JSON object on the last line.")
    ] = False,
) -> None:
    """Run datasets through targets (and models), write a run folder, optionally gate."""
    from app.evals.wiring import allowed_tools, contexts, llm_model
    from app.runtime import Runtime
    from app.settings import get_settings
    from evals.compare import Thresholds, load_run, read_baselines, write_baselines
    from evals.compare import gate as gate_run
    from evals.dataset import DATASETS_DIR, DatasetError, from_suites, load_datasets
    from evals.judge import LlmJudge
    from evals.providers import CASSETTES_DIR
    from evals.report import write_run
    from evals.run import Target, headline, run_eval
    from evals.targets import GraphTarget, PromptTarget
    from packs.playbook import Playbook
    from packs.registry import PackRegistry
    from packs.suite_runner import AUTHOR_TENANT_ID
    from prompts.outputs import PlaybookDraft
    from prompts.registry import PromptError, get_prompt, load_prompts

    settings = get_settings()
    registry = PackRegistry.from_directory(packs or settings.packs_dir)
    runtime = Runtime(settings, registry)
    try:
        loaded = load_datasets(datasets or [DATASETS_DIR])
    except DatasetError as exc:
        raise _fail(str(exc)) from None
    if suites:
        for domain_name in sorted({d.domain for d in loaded}):
            domain = registry.domain(domain_name)
            if domain is not None:
                suite = from_suites(domain)
                if suite is not None:
                    loaded.append(suite)
    if tag:
        wanted = set(tag)
        loaded = [
            d.model_copy(update={"cases": [c for c in d.cases if wanted & set(c.tags)]}) for d in loaded
        ]
        loaded = [d for d in loaded if d.cases]
        if not loaded:
            raise _fail(f"--tag {', '.join(sorted(wanted))}: no case has any of these tags")
    for dataset in loaded:
        if registry.domain(dataset.domain) is None:
            raise _fail(
                f"dataset {dataset.dataset}: $.domain: no domain pack {dataset.domain!r} in the packs"
            )
        for index, case in enumerate(dataset.cases):
            if case.tenant != AUTHOR_TENANT_ID and registry.tenant(case.tenant) is None:
                raise _fail(
                    f"dataset {dataset.dataset}: $.cases[{index}].tenant: no tenant pack {case.tenant!r}"
                )
    candidates = load_prompts(prompts_dir) if prompts_dir else {}
    store = cassettes or CASSETTES_DIR
    models = [
        llm_model(settings, runtime, m, base_url=base_url, mode=provider, cassettes=store)
        for m in model or []
    ]
    pairs: list[tuple[Target, str]] = []
    for name in target or ["graph"]:
        if name == "graph":
            if not models:
                pairs.append((GraphTarget(contexts(runtime, registry, None)), "rules"))
            for m in models:
                pairs.append((GraphTarget(contexts(runtime, registry, m.client), m.transport), m.label))
            continue
        if not name.startswith("prompt:") or "@" not in name:
            raise _fail(f"--target {name!r}: use graph or prompt:ID@VERSION")
        prompt_id, _, version = name.removeprefix("prompt:").partition("@")
        try:
            template = candidates.get(prompt_id) or get_prompt(prompt_id)
        except PromptError as exc:
            raise _fail(f"--target {name}: {exc}") from None
        if str(template.version) != version:
            raise _fail(
                f"--target {name}: {prompt_id} is at version {template.version} (--prompts DIR for others)"
            )
        if not models:
            raise _fail(f"--target {name}: a prompt target needs --model")
        for m in models:
            assert m.client is not None
            pairs.append(
                (
                    PromptTarget(template, contexts(runtime, registry, m.client), m.client, m.transport),
                    m.label,
                )
            )
    judge = None
    if judge_model:
        judged = llm_model(settings, runtime, judge_model, base_url=base_url, mode=provider, cassettes=store)
        assert judged.client is not None
        judge = LlmJudge(judged.client)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    playbook_schema, draft_schema = Playbook.model_json_schema(), PlaybookDraft.model_json_schema()

    result = asyncio.run(
        run_eval(
            loaded, pairs, run_id=run_id, provider=provider, epochs=epochs, allowed_tools=lambda t, d: allowed_tools(runtime, registry, t, d),
            draft_schema=lambda t: playbook_schema if t == "graph" else draft_schema, judge=judge,
            price_per_million=(price_in, price_out),
        )
    )  # fmt: skip
    folder = write_run(result, out or settings.data_dir / "evals" / run_id)
    overall = result.metrics["overall"]
    console.print(
        f"{overall['cases']} cases, pass rate {_pct(overall['passRate'])}, replay misses {overall['replayMisses']}, "
        f"errors {overall['errors']}; report: {folder / 'report.html'}",
        markup=False,
    )
    for name, f in overall["fields"].items():
        console.print(
            f"  {name}: accuracy {_pct(f['accuracy'])}, macro-F1 {f['macroF1']:.3f} (n={f['n']})",
            markup=False,
        )
    for miss in {r.observation.replayMiss for r in result.cases if r.observation.replayMiss}:
        errors.print(f"{miss}", markup=False)
    if update_baseline:
        for path in write_baselines(result):
            console.print(f"baseline written: {path}", markup=False)
    code = 0
    if gate:
        before = load_run(baseline) if baseline else read_baselines(result.datasets)
        code, reasons = gate_run(result, Thresholds(passRate=min_pass_rate), before)
        for reason in reasons:
            errors.print(f"gate: {reason}", markup=False)
    if as_json:
        print(json.dumps({**headline(result), "folder": str(folder), "exitCode": code}))
    raise typer.Exit(code)


@eval_app.command("compare")
def compare_runs(
    before: Annotated[Path, typer.Argument(help="Run folder (or results.json) of the earlier run.")],
    after: Annotated[Path, typer.Argument(help="Run folder (or results.json) of the later run.")],
    gate: Annotated[bool, typer.Option(help="Exit 2 when a case regressed.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Metric deltas and the cases that got worse or better."""
    from pydantic import ValidationError

    from evals.compare import EXIT_REGRESSION, compare, load_run

    try:
        a, b = load_run(before), load_run(after)
    except (OSError, ValidationError) as exc:
        raise _fail(f"cannot read a run: {exc}") from None
    diff = compare(a, b)
    for key, (x, y) in diff.deltas.items():
        if x is None and y is None:
            continue
        delta = "" if x is None or y is None else f" ({100 * (y - x):+.1f} pts)"
        console.print(f"{key}: {_pct(x)} -> {_pct(y)}{delta}", markup=False)
    for key in diff.regressed:
        console.print(f"worse:  {key}", markup=False)
    for key in diff.improved:
        console.print(f"better: {key}", markup=False)
    code = EXIT_REGRESSION if gate and diff.regressed else 0
    if as_json:
        print(json.dumps({**diff.as_json(), "exitCode": code}))
    raise typer.Exit(code)


@eval_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of dataset files (also in evals/schemas/dataset.schema.json)."""
    from evals.dataset import render_schema

    print(render_schema(), end="")


@eval_app.command("canary")
def canary_command(
    model: Annotated[str, typer.Option(help="Model name at the endpoint.")],
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint (default EXOPS_LLM_BASE_URL).")
    ] = None,
) -> None:
    """Check that the endpoint honours response_format (exit 1 when it silently ignores it)."""
    from app.evals.wiring import llm_model
    from app.runtime import Runtime
    from app.settings import get_settings
    from evals.canary import canary
    from evals.providers import CASSETTES_DIR
    from packs.registry import PackRegistry

    settings = get_settings()
    runtime = Runtime(settings, PackRegistry.from_directory(settings.packs_dir))
    chosen = llm_model(settings, runtime, model, base_url=base_url, mode="live", cassettes=CASSETTES_DIR)
    assert chosen.client is not None
    result = asyncio.run(canary(chosen.client))
    console.print(f"response_format {result.verdict}: {result.detail}", markup=False)
    raise typer.Exit(0 if result.verdict == "honoured" else 1)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"--since {value!r}: use an ISO date or time, e.g. 2026-11-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _with_store(work: Any) -> Any:
    """Run ``work(db, runtime, store)`` against the database and its active pack versions."""
    from app.db.session import Database
    from app.packstore import PackStore
    from app.runtime import Runtime
    from app.settings import get_settings

    settings = get_settings()
    db = Database(settings.db_url)
    try:
        store = PackStore()
        async with db.session() as session:
            await store.load(session)
        return await work(db, Runtime(settings, store), store)
    finally:
        await db.close()


@dataset_app.command("from-cases")
def from_cases(
    tenant: Annotated[str, typer.Option(help="Tenant id, exactly as stored.")],
    since: Annotated[str | None, typer.Option(help="Only cases received since (ISO date or time).")] = None,
    last: Annotated[int | None, typer.Option(min=1, help="Only the newest N finished cases.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the dataset here (default: stdout).")] = None,
) -> None:
    """Export a tenant's finished cases, with what people decided, as an eval dataset (YAML)."""
    import yaml

    from app.evals.stored import decided_cases, decided_dataset
    from app.runtime import ConfigurationError

    moment = _since(since)

    async def work(db: Any, runtime: Any, store: Any) -> Any:
        domain = store.domain_of(runtime.tenant(tenant)).domainName
        async with db.session() as session:
            cases = await decided_cases(session, tenant, since=moment, last=last)
        return decided_dataset(tenant, domain, cases) if cases else None

    try:
        dataset = asyncio.run(_with_store(work))
    except (ConfigurationError, LookupError) as exc:
        raise _fail(f"--tenant {tenant}: {exc}") from None
    if dataset is None:
        raise _fail(f"--tenant {tenant}: no finished cases{' since ' + since if since else ''}")
    text = yaml.safe_dump(
        dataset.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True
    )
    if out is None:
        print(text, end="")
    else:
        out.write_text(
            "# yaml-language-server: $schema=" + "evals/schemas/dataset.schema.json\n" + text,
            encoding="utf-8",
        )
        console.print(f"{len(dataset.cases)} cases written to {out}", markup=False)


@eval_app.command("whatif")
def whatif(
    tenant: Annotated[str, typer.Option(help="Tenant id, exactly as stored.")],
    candidate: Annotated[Path, typer.Option(help="A domain pack or tenant policy file (YAML or JSON).")],
    last: Annotated[int, typer.Option(min=1, max=500, help="Replay the newest N finished cases.")] = 50,
    since: Annotated[str | None, typer.Option(help="Only cases received since (ISO date or time).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay a tenant's real cases through a candidate pack version (no side effects); list changed
    decisions. Exit 0 whether or not decisions change; 3 when the candidate or tenant is invalid."""
    from app.evals.whatif import run_what_if
    from app.runtime import ConfigurationError
    from packs.documents import read_document
    from packs.problems import PackError

    moment = _since(since)
    try:
        data = read_document(candidate)
    except PackError as exc:
        raise _fail("; ".join(str(p) for p in exc.problems)) from None

    async def work(db: Any, runtime: Any, store: Any) -> Any:
        return await run_what_if(
            db, runtime, store, tenant, data, source=str(candidate), last=last, since=moment
        )

    try:
        report = asyncio.run(_with_store(work))
    except PackError as exc:
        raise _fail("; ".join(str(p) for p in exc.problems)) from None
    except (ConfigurationError, LookupError) as exc:
        raise _fail(f"--tenant {tenant}: {exc}") from None
    if as_json:
        print(report.model_dump_json())
        return
    console.print(
        f"{report.candidate}: {report.changedCases} of {report.cases} cases would decide differently",
        markup=False,
    )
    for change in report.changes:
        console.print(
            f"  {change.caseId}: {change.field} {change.actual} -> {change.candidate}", markup=False
        )
    for case_id, error in report.errors.items():
        errors.print(f"  {case_id}: not replayed: {error}", markup=False)
