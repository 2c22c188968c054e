"""``exops eval``: the sample datasets on replay inside ``make test`` (gated against the committed
baselines), run folders, ``--json`` on the last line, ``compare`` and its exit code."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from app.cli.main import cli
from evals.compare import EXIT_REGRESSION
from evals.run import RunResult

runner = CliRunner()


def test_sample_datasets_pass_their_baselines_on_replay(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(
        cli, ["eval", "run", "--suites", "--gate", "--min-pass-rate", "0.95", "--json", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    headline = json.loads(result.stdout.strip().splitlines()[-1])
    assert headline["exitCode"] == 0 and headline["replayMisses"] == 0 and headline["cases"] >= 120
    assert headline["macroF1"]["severity"] >= 0.95
    for name in ("results.json", "summary.md", "report.html", "junit.xml"):
        assert (out / name).exists()
    html = (out / "report.html").read_text()
    assert (
        "<svg" in html
        and "<script" not in html
        and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )


def test_compare_lists_regressions_and_gates(tmp_path: Path) -> None:
    dataset = Path(__file__).parent.parent / "evals" / "datasets" / "saas-incidents" / "handwritten.yaml"
    first = runner.invoke(cli, ["eval", "run", str(dataset), "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    run = RunResult.model_validate_json((tmp_path / "a" / "results.json").read_text())
    worse = run.model_copy(deep=True)
    worse.cases[0].passed = False
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(worse.model_dump_json())
    result = runner.invoke(
        cli, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--gate", "--json"]
    )
    assert result.exit_code == EXIT_REGRESSION
    diff = json.loads(result.stdout.strip().splitlines()[-1])
    assert diff["regressed"] == [run.cases[0].key] and diff["improved"] == []


def test_bad_target_and_unknown_tenant_are_clear_errors(tmp_path: Path) -> None:
    bad = runner.invoke(
        cli, ["eval", "run", "--target", "prompt:nope@1", "--model", "m", "--out", str(tmp_path)]
    )
    assert bad.exit_code == 3 and "unknown prompt 'nope'" in bad.output
    path = tmp_path / "d.yaml"
    path.write_text(
        "dataset: d\ndomain: saas-incidents\ncases:\n  - id: c1\n    tenant: nobody\n    input: {}\n    expected: {}\n"
    )
    result = runner.invoke(cli, ["eval", "run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3 and "$.cases[0].tenant: no tenant pack 'nobody'" in result.output


def test_recorded_smollm2_answers_replay_offline(tmp_path: Path) -> None:
    """Cassettes recorded against ``exops llm serve`` (SmolLM2-135M, llama.cpp) replay in CI: every
    request of the LLM subset has its cassette (a miss fails the gate), and the run reports what the
    real model did: it rambled inside its JSON string until the server's token cap (``length``)."""
    observations = []
    for tag, target, count in (
        ("unknown-type", "prompt:type_classification@1", 9),
        ("llm-draft", "prompt:playbook_draft@1", 3),
    ):
        out = tmp_path / tag
        result = runner.invoke(
            cli,
            ["eval", "run", "--tag", tag, "--target", target, "--model", "smollm2-135m", "--gate",
             "--json", "--out", str(out)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        headline = json.loads(result.stdout.strip().splitlines()[-1])
        assert headline["replayMisses"] == 0 and headline["cases"] == count
        assert headline["promptTokens"] > 0 and headline["completionTokens"] == 384 * count
        run = RunResult.model_validate_json((out / "results.json").read_text())
        observations += [(target, r.observation) for r in run.cases]
    assert all((obs.error or "").startswith("length:") for _, obs in observations)
    drafts = [obs for target, obs in observations if target == "prompt:playbook_draft@1"]
    assert len(drafts) == 3 and all(obs.draftSchemaValid is False for obs in drafts)


def test_tag_filter_keeps_matching_cases_only(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["eval", "run", "--tag", "injection", "--json", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    run = RunResult.model_validate_json((tmp_path / "r" / "results.json").read_text())
    assert len(run.cases) == 9 and all("injection" in r.tags for r in run.cases)
    none = runner.invoke(cli, ["eval", "run", "--tag", "no-such-tag", "--out", str(tmp_path / "n")])
    assert none.exit_code == 3 and "--tag no-such-tag: no case has any of these tags" in none.output
