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
