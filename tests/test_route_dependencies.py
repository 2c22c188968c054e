"""Every dependency and endpoint of the API is a coroutine function.

FastAPI runs a plain ``def`` dependency or endpoint in its thread pool, on every request: a hop to a
thread and back that cost a tenth of an ingest request's CPU when one validator of a header was
written that way. Nothing the routes depend on does blocking work, so nothing needs the pool.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts

from app.api.main import create_app
from app.settings import Settings


def _sync_calls(dependant: Any) -> list[str]:
    found = []
    for sub in dependant.dependencies:
        call = sub.call
        if call is not None and not inspect.iscoroutinefunction(call):
            found.append(f"{call.__module__}.{call.__qualname__}")
        found += _sync_calls(sub)
    return found


def test_no_route_runs_a_plain_function_in_the_thread_pool(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    sync: dict[str, set[str]] = {}
    routes = 0
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if not isinstance(original, APIRoute):
            continue
        routes += 1
        calls = _sync_calls(original.dependant)
        if not inspect.iscoroutinefunction(original.endpoint):
            calls.append(f"{original.endpoint.__module__}.{original.endpoint.__qualname__} (endpoint)")
        for call in calls:
            sync.setdefault(call, set()).add(str(route.path))
    assert routes > 50  # the walk reached the included routers
    assert sync == {}
