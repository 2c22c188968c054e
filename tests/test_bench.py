"""``exops bench`` on tiny sizes, so the command keeps working; no timing is asserted (it is a benchmark,
and a test machine's speed says nothing about the code)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.bench.pipeline import real_node_count
from app.cli.main import cli


def test_bench_runs_and_prints_the_figures_as_json() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "--pipeline-cases", "3", "--ingest-requests", "10", "--rounds", "1", "--json",
              "--memory-cases", "300", "--memory-queries", "5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])

    for name in ("pipeline_ratio", "ingest_ratio", "pipeline_ours_eps", "pipeline_bare_eps", "ingest_ours_rps",
                 "ingest_bare_rps", "checkpoint_bytes_per_exception", "db_rows_per_exception", "peak_memory_mb",
                 "storage_bytes_per_case"):  # fmt: skip
        assert isinstance(figures[name], int | float) and figures[name] > 0, name
    assert figures["goals"] == {"pipeline": 0.8, "ingest": 0.8, "storage_bytes_per_case": 15_000}
    assert set(figures["met"]) == {"pipeline", "ingest", "storage"}
    assert all(isinstance(met, bool) for met in figures["met"].values())
    assert figures["machine"]["cpu_count"] >= 1 and figures["machine"]["python"]
    pipeline = figures["pipeline"]
    assert (
        pipeline["nodes"] == real_node_count()
        and pipeline["rounds"] == 1
        and len(pipeline["ours_eps_by_round"]) == 1
    )
    assert pipeline["db_rows_by_table"]["exceptions"] == 1.0  # one case row per exception processed
    storage = pipeline["storage"]
    assert storage["finished_cases"] >= 1  # the mix's first examples finish
    parts = storage["checkpoint_bytes_per_case"] + storage["table_bytes_per_case"]
    assert abs(figures["storage_bytes_per_case"] - parts) <= 1  # each part rounded on its own
    assert all(key.split("/")[0] in ("done", "waiting") for key in pipeline["outcomes"])
    assert figures["ingest"]["requests_per_round"] == 10
    assert figures["memory_search_ratio"] > 0 and figures["memory_p95_ms"] > 0
    assert figures["memory_triage_added_ms"] > 0 and figures["memory"]["cases"] == 300


def test_bench_refuses_sizes_below_one() -> None:
    result = CliRunner().invoke(cli, ["bench", "--pipeline-cases", "0"])
    assert result.exit_code == 2
