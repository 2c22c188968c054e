"""``exops serve`` / ``exops worker`` with a kill point, for the crash tests (tests/test_crash_recovery.py,
tests/test_many_processes.py).

Run as ``python -m tests.crash_server serve --port P`` (or ``worker``): the real CLI, configured from
the environment like any ``exops`` process, except that ``EXOPS_TEST_KILL_AT`` names a moment at which the
process sends itself SIGKILL (nothing is flushed, nothing is cleaned up: ``kill -9``):

* ``first-checkpoint``: right after the first checkpoint of a new case and its input are written
  (the graph has not run a single node);
* ``mid-run``: after the third superstep of a case has been checkpointed;
* ``mid-resume``: after the first checkpoint written while a person's answer resumes a case;
* ``after-resume``: right after the graph took a person's answer, before anything was recorded.

``EXOPS_TEST_KILL_AFTER=n`` waits for the n-th time the point is reached. Without
``EXOPS_TEST_KILL_AT`` it is plain ``exops``.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from graph.runner import CaseRunner

KILL_AT = os.environ.get("EXOPS_TEST_KILL_AT", "")
KILL_AFTER = int(os.environ.get("EXOPS_TEST_KILL_AFTER", "1"))  # the n-th time the point is reached
_resuming = {"active": False}
_reached = {"count": 0}


def _die() -> None:
    _reached["count"] += 1
    if _reached["count"] < KILL_AFTER:
        return
    sys.stderr.write(f"crash_server: kill -9 at {KILL_AT}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install() -> None:
    for saver in (AsyncSqliteSaver, AsyncPostgresSaver):
        _patch_saver(saver)
    original_answer = CaseRunner.answer

    async def answer(self: CaseRunner, *args: Any, **kwargs: Any) -> Any:
        _resuming["active"] = True
        outcome = await original_answer(self, *args, **kwargs)
        if KILL_AT == "after-resume":
            _die()
        return outcome

    CaseRunner.answer = answer  # type: ignore[method-assign]


def _patch_saver(saver: Any) -> None:
    original_put = saver.aput

    async def aput(self: Any, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        stored = await original_put(self, config, checkpoint, metadata, new_versions)
        source, step = metadata.get("source"), metadata.get("step", 0)
        if (KILL_AT == "mid-run" and source == "loop" and step >= 3 and not _resuming["active"]) or (
            KILL_AT == "mid-resume" and _resuming["active"]
        ):
            _die()
        return stored

    saver.aput = aput
    original_writes = saver.aput_writes

    async def aput_writes(self: Any, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        await original_writes(self, config, writes, task_id, task_path)
        if KILL_AT == "first-checkpoint" and not _resuming["active"]:  # the input's writes are the first
            _die()

    saver.aput_writes = aput_writes


if __name__ == "__main__":
    if KILL_AT:
        install()
    from app.cli.main import cli

    cli(sys.argv[1:])
