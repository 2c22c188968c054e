from __future__ import annotations

import copy
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).parent.parent / "packs" / "samples"


def _read(name: str) -> dict[str, Any]:
    data = yaml.safe_load((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


_DOMAIN = _read("mini-domain.yaml")
_TENANT = _read("mini-tenant.yaml")


@pytest.fixture
def domain_doc() -> dict[str, Any]:
    """A fresh copy of the mini domain pack document, to mutate."""
    return copy.deepcopy(_DOMAIN)


@pytest.fixture
def tenant_doc() -> dict[str, Any]:
    return copy.deepcopy(_TENANT)


@pytest.fixture
def write_pack(tmp_path: Path) -> Callable[[str, Any], Path]:
    """Write a document (dict → YAML/JSON by suffix, str → verbatim) under tmp_path."""

    def write(name: str, content: Any) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        elif name.endswith(".json"):
            import json

            path.write_text(json.dumps(content, indent=2))
        else:
            path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    return write


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-snapshots", action="store_true", help="Rewrite tests/snapshots from the code.")


@pytest.fixture
def snapshot(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Compare text with tests/snapshots/NAME (rewritten instead with --update-snapshots)."""
    update = bool(request.config.getoption("--update-snapshots"))

    def check(name: str, text: str) -> None:
        path = Path(__file__).parent / "snapshots" / name
        if update or not path.exists():
            path.write_text(text)
        assert text == path.read_text(), (
            f"{path} differs: review the change, then run pytest --update-snapshots"
        )

    return check


_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def _only_loopback_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests run offline: any connection or lookup beyond loopback fails the test, even when the
    code under test swallows the error (respx or a local server must answer everything)."""
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )
    attempts: list[str] = []

    def outside(address: Any) -> bool:
        return isinstance(address, tuple) and address[0] not in _LOOPBACK

    def connect(self: socket.socket, address: Any) -> Any:
        if outside(address):
            attempts.append(str(address[0]))
            raise OSError(f"tests must not reach {address[0]}: mock it with respx")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if outside(address):
            attempts.append(str(address[0]))
            raise OSError(f"tests must not reach {address[0]}: mock it with respx")
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and host not in _LOOPBACK:
            attempts.append(str(host))
            raise OSError(f"tests must not resolve {host}: mock it with respx")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    assert not attempts, f"a test tried to reach the network: {attempts}"


def _backends() -> list[Any]:
    from tests.api_helpers import POSTGRES_URL

    postgres = pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(POSTGRES_URL is None, reason="EXOPS_TEST_POSTGRES_URL not set"),
        ],
    )
    return ["sqlite", postgres]


@pytest.fixture(params=_backends())
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The real API on SQLite and, when configured, on PostgreSQL (see tests/api_helpers.py)."""
    from tests.api_helpers import running_api

    async with running_api(tmp_path, request.param) as running:
        yield running
