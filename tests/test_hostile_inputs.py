"""Hostile and careless input: each refused with the exact status and problem, never a 500, and a
refused request never loses what was already accepted (issue 12, defects 3 to 6).

Over HTTP on SQLite and PostgreSQL (when EXOPS_TEST_POSTGRES_URL is set), and at the packs layer
the CLI and the pack folder share.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from sqlalchemy import event
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app.cli.main import cli
from app.db.session import is_sqlite
from tests.api_helpers import SAMPLES, Api, running_api

EXAMPLES = json.loads(
    (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
)["exceptions"]
FAIL = EXAMPLES[0]  # GLX-1001, a settlement fail the sample packs resolve
INTEGER_RANGE = (
    "the integer does not fit in 64 bits (-9223372036854775808 to 9223372036854775807): send it as a string"
)


def nested(depth: int) -> dict[str, Any]:
    """``{"a": {"a": ...}}``: ``depth`` objects inside one another."""
    inner: dict[str, Any] = {}
    for _ in range(depth - 1):
        inner = {"a": inner}
    return inner


async def cases(api: Api, tenant: str = "globex-markets") -> list[str]:
    listing = (
        await api.client.get(f"/exceptions/{tenant}?limit=200", headers=api.as_("viewer", tenant))
    ).json()
    return sorted(item["exceptionId"] for item in listing["items"])


async def intakes(api: Api, exception_id: str) -> int:
    events = (
        await api.client.get(f"/exceptions/globex-markets/{exception_id}/events", headers=api.as_("viewer"))
    ).json()
    return sum(e["type"] == "stage_decision" and e["stage"] == "intake" for e in events["items"])


# -- 3. Idempotency-Key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("k" * 201, "must be at most 200 characters"),
        ("tab\there", "must be printable ASCII characters"),
    ],
)
async def test_a_bad_idempotency_key_is_a_400_naming_the_header(api: Api, key: str, message: str) -> None:
    for _ in range(2):  # an empty key used to be stored, and every later one answered 500
        response = await api.post_and_settle("globex-markets", {**FAIL}, **{"Idempotency-Key": key})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == f"invalid Idempotency-Key header: it {message}"
        assert response.json()["errors"] == [{"path": "header.Idempotency-Key", "message": message}]
    assert await cases(api) == []
    fine = await api.post_and_settle("globex-markets", {**FAIL}, **{"Idempotency-Key": "k" * 200})
    assert fine.status_code == 202 and fine.json() == {"exceptionIds": ["GLX-1001"]}


@contextmanager
def writes_held(api: Api) -> Iterator[None]:
    """Hold the database's write lock from another connection (SQLite) or lock the two tables the
    ingestion writes (PostgreSQL): concurrent requests pile up at their first write until released."""
    url = make_url(api.settings.db_url)
    if is_sqlite(api.settings.db_url):
        assert url.database is not None
        lite = sqlite3.connect(url.database, isolation_level=None)
        lite.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            lite.execute("COMMIT")
            lite.close()
    else:
        with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as pg:
            pg.execute("LOCK TABLE exceptions, runs IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                pg.commit()


async def all_at_once(api: Api, count: int, send: Callable[[], Any]) -> list[Any]:
    """Send ``count`` requests so that all of them reach their first write before any of them may
    write: the race of concurrent duplicates, made certain instead of left to timing."""
    started = 0

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal started
        started += statement.lstrip().upper().startswith("INSERT")

    engine = api.services.db.engine.sync_engine
    inplace = api.services.db.inplace  # SQLite stores an ingest through its in-place writer
    run = inplace.run if inplace is not None else None

    async def counted(work: Any) -> Any:
        nonlocal started
        started += 1
        assert run is not None
        return await run(work)

    await api.client.get("/exceptions/globex-markets", headers=api.as_("operator"))  # key seen: no write
    event.listen(engine, "before_cursor_execute", seen)
    if inplace is not None:
        inplace.run = counted  # type: ignore[method-assign]
    try:
        with writes_held(api):
            requests = [asyncio.ensure_future(send()) for _ in range(count)]
            async with asyncio.timeout(60):
                while started < count:
                    await asyncio.sleep(0.01)
        return list(await asyncio.gather(*requests, return_exceptions=True))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
        if inplace is not None:
            inplace.run = run  # type: ignore[assignment, method-assign]


async def test_ten_concurrent_requests_with_one_new_key_all_answer_the_first_ones_ids(api: Api) -> None:
    body = {k: v for k, v in FAIL.items() if k != "exceptionId"}  # a new id is generated per request

    def send() -> Any:
        headers = {**api.as_("operator"), "Idempotency-Key": "batch-7"}
        return api.client.post("/exceptions/globex-markets", json=body, headers=headers)

    responses = await all_at_once(api, 10, send)
    assert [getattr(r, "status_code", r) for r in responses] == [202] * 10
    answers = {json.dumps(r.json()) for r in responses}
    assert len(answers) == 1
    [exception_id] = json.loads(answers.pop())["exceptionIds"]
    await api.settle()
    assert await cases(api) == [exception_id]
    assert await intakes(api, exception_id) == 1


async def test_one_exception_id_sent_ten_times_at_once_is_stored_and_processed_once(api: Api) -> None:
    def send() -> Any:
        return api.client.post("/exceptions/globex-markets", json=FAIL, headers=api.as_("operator"))

    responses = await all_at_once(api, 10, send)
    assert [getattr(r, "status_code", r) for r in responses] == [202] * 10
    assert all(r.json() == {"exceptionIds": ["GLX-1001"]} for r in responses)
    await api.settle()
    assert await cases(api) == ["GLX-1001"]
    assert await intakes(api, "GLX-1001") == 1


# -- 4. Hostile YAML -------------------------------------------------------------------------------


def alias_bomb(top: str) -> str:
    """The "billion laughs": 321 bytes that stand for 10^7 strings (each level repeats the last ten times)."""
    lines = [top, 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdef", "bcdefg", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 10) + "]")
    return "\n".join(lines) + "\n"


BOMB_PROBLEM = {
    "path": "$",
    "message": "the document expands to more than 100000 values (each use of an alias counts what it stands for)",
}

HOSTILE_YAML = [
    ("when: 2026-01-01\n", "$.when", "a date is not allowed here; quote it"),
    ("x:\n  y: 2026-01-01T10:00:00Z\n", "$.x.y", "a date is not allowed here; quote it"),
    ("blob: !!binary aGVsbG8=\n", "$.blob", "binary data (!!binary) is not allowed here; use a string"),
    ("tags: !!set {a, b}\n", "$.tags", "a set (!!set) is not allowed here; use a list"),
    ("pairs: !!omap [{a: 1}]\n", "$.pairs", "an ordered map (!!omap) is not allowed here; use a mapping"),
    ("loop: &me [1, *me]\n", "$.loop[1]",
     "a recursive alias (an anchor used inside itself) is not allowed here (line 2, column 7)"),
    ("codes:\n  404: missing\n", "$.codes['404']", "a key must be a string, not a number; quote it"),
    ("on: true\n", "$.on", "a key must be a string, not a boolean; quote it"),
    ("ratio: .nan\n", "$.ratio", "NaN and Infinity are not JSON numbers"),
    ("big: 18446744073709551616\n", "$.big", INTEGER_RANGE),
    ("obj: !!python/object:os.system x\n", "$.obj", "the tag tag:yaml.org,2002:python/object:os.system is not allowed here"),
    ("deep: " + "[" * 70 + "]" * 70 + "\n", "$", "nested deeper than 64 levels (line 2, column 70)"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "path", "message"), HOSTILE_YAML)
def test_yaml_holding_what_json_cannot_is_refused_at_its_path(text: str, path: str, message: str) -> None:
    from packs.documents import parse_document
    from packs.problems import PackError, Problem

    with pytest.raises(PackError) as refused:
        parse_document("tenantId: t\n" + text, "pack.yaml")
    assert refused.value.problems == [Problem("pack.yaml", path, message)]


@pytest.mark.parametrize(("text", "path", "message"), HOSTILE_YAML[:-1])
def test_the_pure_python_loader_refuses_the_same(text: str, path: str, message: str) -> None:
    """Without libyaml the same loader runs on PyYAML's own parser, with the same answers."""
    from packs.problems import json_path
    from packs.yamlload import DocumentProblems, PureJsonLoader, load_yaml

    with pytest.raises(DocumentProblems) as refused:
        load_yaml("tenantId: t\n" + text, loader=PureJsonLoader)
    assert [(json_path(p), m) for p, m in refused.value.problems] == [(path, message)]


def test_an_alias_bomb_is_refused_while_parsing_and_fair_aliases_still_work() -> None:
    from packs.documents import parse_document
    from packs.problems import PackError, Problem

    with pytest.raises(PackError) as refused:
        parse_document(alias_bomb("tenantId: t"), "pack.yaml")
    assert refused.value.problems == [Problem("pack.yaml", BOMB_PROBLEM["path"], BOMB_PROBLEM["message"])]
    fair = "tenantId: t\nbase: &base {retries: 2, timeout: 5}\ntool: {<<: *base, timeout: 9}\nlist: [*base]\n"
    assert parse_document(fair, "pack.yaml") == {
        "tenantId": "t",
        "base": {"retries": 2, "timeout": 5},
        "tool": {"retries": 2, "timeout": 9},
        "list": [{"retries": 2, "timeout": 5}],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": ' + "[" * 70 + "]" * 70 + "}", "nested deeper than 64 levels"),
        ('{"a": NaN}', "NaN and Infinity are not JSON numbers"),
        ('{"a": -Infinity}', "NaN and Infinity are not JSON numbers"),
        (
            '{"a": ' + "9" * 5000 + "}",
            None,
        ),  # beyond Python's own 4300-digit limit: still a problem, not a crash
    ],
)
def test_json_pack_text_is_held_to_the_same_limits(text: str, message: str | None) -> None:
    from packs.documents import parse_document
    from packs.problems import PackError

    with pytest.raises(PackError) as refused:
        parse_document(text, "pack.json")
    [problem] = refused.value.problems
    assert problem.path == "$"
    if message is not None:
        assert problem.message == message
    with pytest.raises(PackError) as big:
        parse_document('{"a": {"b": [1, 9223372036854775808]}}', "pack.json")
    assert [(p.path, p.message) for p in big.value.problems] == [("$.a.b[1]", INTEGER_RANGE)]


def test_cli_validate_refuses_a_date_and_a_bomb(tmp_path: Path, domain_doc: dict[str, Any]) -> None:
    domain_doc["entities"]["Trade"]["attributes"]["tradeDate"] = {
        "type": "date",
        "examples": [date(2026, 1, 15)],
    }
    dated = tmp_path / "dated.yaml"
    dated.write_text(yaml.safe_dump(domain_doc, sort_keys=False))
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb("tenantId: t"))
    result = CliRunner().invoke(cli, ["packs", "validate", str(dated), str(bomb)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{bomb}: $: {BOMB_PROBLEM['message']}",
        f"{dated}: $.entities.Trade.attributes.tradeDate.examples[0]: a date is not allowed here; quote it",
    ]


def test_cli_run_reads_exception_files_with_the_same_limits(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('[{"rawPayload": ' + deep_text(80) + "}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb("exceptions: []"))
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps([{**FAIL, "rawPayload": {"amount": 2**64}}]))
    checkpoints = ["--checkpoints", str(tmp_path / "cp.sqlite"), "--tenant", "globex-markets", "--json"]
    for path, message in [
        (deep, f"{deep}: nested deeper than 64 levels"),
        (bomb, f"{bomb}: {BOMB_PROBLEM['message']}"),
        (huge, f"{huge}: $[0].rawPayload.amount: {INTEGER_RANGE}"),
    ]:
        result = CliRunner().invoke(cli, ["run", str(path), *checkpoints])
        assert result.exit_code == 2 and message in result.stderr, result.stderr


async def send_pack(api: Api, path: str, text: str, role: str = "platform_admin") -> httpx.Response:
    headers = {**api.as_(role), "Content-Type": "application/yaml"}
    return await api.client.post(path, content=text, headers=headers)


async def test_validate_and_upload_give_the_same_answer_on_a_date_in_a_free_form_field(
    api: Api, domain_doc: dict[str, Any]
) -> None:
    """An entity attribute's ``examples`` take any value; an unquoted date there used to pass
    /validate and then fail the upload with a 500."""
    domain_doc["entities"]["Trade"]["attributes"]["tradeDate"] = {
        "type": "date",
        "examples": [date(2026, 1, 15)],
    }
    text = yaml.safe_dump(domain_doc, sort_keys=False)
    assert "- 2026-01-15\n" in text
    expected = {
        "detail": "the pack cannot be read",
        "errors": [{"path": "$.entities.Trade.attributes.tradeDate.examples[0]",
                    "message": "a date is not allowed here; quote it"}],
    }  # fmt: skip
    for path in ("/admin/domain-packs/validate", "/admin/domain-packs"):
        response = await send_pack(api, path, text)
        assert response.status_code == 422, (path, response.text)
        assert {k: response.json()[k] for k in expected} == expected
    quoted = text.replace("- 2026-01-15", "- '2026-01-15'")
    assert (await send_pack(api, "/admin/domain-packs/validate", quoted)).status_code == 200
    assert (await send_pack(api, "/admin/domain-packs", quoted)).status_code == 201


async def test_a_tenant_admin_cannot_store_an_alias_bomb_or_a_deep_policy(api: Api) -> None:
    policy = (SAMPLES / "tenants" / "globex-markets.yaml").read_text()
    before = (await api.client.get("/admin/globex-markets/policy", headers=api.as_("admin"))).json()
    deep = policy + "toolOverrides: " + "[" * 70 + "]" * 70 + "\n"
    for text, problem in [
        (alias_bomb(policy.rstrip()), BOMB_PROBLEM),
        (
            deep,
            {
                "path": "$",
                "message": f"nested deeper than 64 levels (line {policy.count(chr(10)) + 1}, column 79)",
            },
        ),
    ]:
        for path in ("/admin/globex-markets/policy/validate", "/admin/globex-markets/policy"):
            response = await send_pack(api, path, text, role="admin")
            assert response.status_code == 422, response.text
            assert response.json()["errors"] == [problem]
    after = (await api.client.get("/admin/globex-markets/policy", headers=api.as_("admin"))).json()
    assert after == before


def test_an_edited_plan_typed_in_the_ui_obeys_the_same_loader() -> None:
    from app.ui.actions import parse_edited_plan

    with pytest.raises(ValueError) as refused:
        parse_edited_plan("- type: manual\n  name: Check\n  instructions: by 2026-01-02\n  x: &a [*a]\n")
    assert str(refused.value) == (
        "the edited plan is not valid YAML or JSON: $[0].x[0]: "
        "a recursive alias (an anchor used inside itself) is not allowed here (line 4, column 6)"
    )
    with pytest.raises(ValueError, match=r"expands to more than 100000 values"):
        parse_edited_plan(alias_bomb("top: 1"))


# -- 5. Deep JSON ----------------------------------------------------------------------------------

DEEP = {
    "detail": "the JSON body cannot be read: nested deeper than 64 levels",
    "errors": [{"path": "body", "message": "nested deeper than 64 levels"}],
}


def deep_text(depth: int) -> str:
    """``{"a": {"a": ... {}}}`` as text: ``depth`` objects (json.dumps itself gives up near 1000)."""
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.mark.parametrize("depth", [65, 300, 900, 5000])
async def test_a_json_body_nested_too_deep_is_a_400_and_nothing_is_accepted(api: Api, depth: int) -> None:
    await api.post_and_settle("globex-markets", {**FAIL})
    fail = json.dumps({**FAIL, "exceptionId": "OK-1"})
    for text in (f'{{"exceptionId": "DEEP-1", "rawPayload": {deep_text(depth - 1)}}}',
                 f'[{fail}, {{"rawPayload": {{"list": [{deep_text(depth - 3)}]}}}}]'):  # fmt: skip
        headers = {**api.as_("operator"), "Content-Type": "application/json"}
        response = await api.client.post("/exceptions/globex-markets", content=text, headers=headers)
        assert response.status_code == 400, response.text
        assert {k: response.json()[k] for k in DEEP} == DEEP
    await api.settle()
    assert await cases(api) == ["GLX-1001"]


async def test_a_body_at_the_depth_limit_is_accepted_and_processed(api: Api) -> None:
    body = {**FAIL, "rawPayload": {**FAIL["rawPayload"], "deep": nested(62)}}  # 64 levels with the body
    response = await api.post_and_settle("globex-markets", body)
    assert response.status_code == 202, response.text
    detail = (await api.client.get("/exceptions/globex-markets/GLX-1001", headers=api.as_("viewer"))).json()
    assert detail["resolutionStatus"] != "ESCALATED" and detail["processing"] == "done"


async def test_deep_json_is_refused_on_every_route_and_the_depth_is_a_setting(tmp_path: Path) -> None:
    async with running_api(tmp_path, "sqlite", max_json_depth=16) as api:
        body = {"comment": "x", "editedPlan": [{"type": "manual", "name": "n", "instructions": "i"}]}
        body["editedPlan"][0]["extra"] = nested(16)  # type: ignore[index]
        for path, json_body in [("/exceptions/globex-markets", {"rawPayload": nested(16)}),
                                ("/approvals/globex-markets/NOPE/approve", body),
                                ("/admin/domain-packs/validate", nested(17))]:  # fmt: skip
            response = await api.client.post(path, json=json_body, headers=api.as_("platform_admin"))
            assert response.status_code == 400, (path, response.text)
            assert response.json()["errors"] == [{"path": "body", "message": "nested deeper than 16 levels"}]
        ok = await api.post_and_settle("globex-markets", {"rawPayload": nested(15)})
        assert ok.status_code == 202


async def test_nan_and_infinity_in_a_body_are_a_400(api: Api) -> None:
    text = '{"exceptionType": "SETTLEMENT_FAIL", "rawPayload": {"amount": NaN, "note": "NaN is fine in a string"}}'
    response = await api.client.post(
        "/exceptions/globex-markets",
        content=text,
        headers={**api.as_("operator"), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "body", "message": "NaN and Infinity are not JSON numbers"}]
    assert await cases(api) == []


# -- 6. The rest -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/exceptions/globex-markets?offset=9223372036854775808", "query.offset"),
        ("/exceptions/globex-markets?offset=1000001", "query.offset"),
        ("/exceptions/globex-markets/GLX-1001/events?offset=9223372036854775808", "query.offset"),
        ("/approvals/globex-markets?status=ALL&offset=9223372036854775808", "query.offset"),
        ("/exceptions/globex-markets?limit=9223372036854775808", "query.limit"),
    ],
)
async def test_numeric_query_parameters_are_bounded(api: Api, url: str, path: str) -> None:
    await api.post_and_settle("globex-markets", FAIL)
    response = await api.client.get(url, headers=api.as_("viewer"))
    assert response.status_code == 422, response.text
    assert [e["path"] for e in response.json()["errors"]] == [path]
    edge = url.replace("9223372036854775808", "1000000").replace("1000001", "1000000")
    if "limit" not in url:
        assert (await api.client.get(edge, headers=api.as_("viewer"))).status_code == 200


async def test_a_step_order_beyond_any_plan_is_a_422(api: Api) -> None:
    await api.post_and_settle("globex-markets", FAIL)
    url = "/exceptions/globex-markets/GLX-1001/playbook/steps/{}/complete"
    for order in ("1001", "9223372036854775808", "99999999999999999999999999"):
        response = await api.client.post(
            url.format(order), json={"notes": "done", "planDigest": "0" * 16}, headers=api.as_("operator")
        )
        assert response.status_code == 422, response.text
        assert [e["path"] for e in response.json()["errors"]] == ["path.stepOrder"]


async def test_the_ui_lists_refuse_oversized_and_odd_numbers(api: Api) -> None:
    signed = await api.client.post(
        "/ui/login", data={"credential": api.keys[("globex-markets", "viewer")], "next": "/ui/"}
    )
    assert signed.status_code == 303
    queue = await api.client.get("/ui/t/globex-markets/approvals?offset=9223372036854775808")
    assert queue.status_code == 200  # like any odd value the page is given, the nearest one it can show
    for odd in ("²", "99999999999999999999", "-1"):
        listing = await api.client.get("/ui/t/globex-markets/exceptions", params={"page": odd})
        assert listing.status_code == 400  # the list page, with the problem said on it
        assert "page must be a whole number from 1 to 100000" in unescape(listing.text)
        assert f"“{odd}”" not in unescape(listing.text)  # a link's words are not repeated


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"amount": 2**64}, "body.rawPayload.amount"),
        ({"amount": 2**63}, "body.rawPayload.amount"),
        ({"legs": [{"id": -(2**63) - 1}]}, "body.rawPayload.legs[0].id"),
    ],
)
async def test_integers_beyond_64_bits_are_refused_at_ingestion(
    api: Api, payload: dict[str, Any], path: str
) -> None:
    await api.post_and_settle("globex-markets", {**FAIL, "exceptionId": "KEPT-1"})
    single = await api.post_and_settle("globex-markets", {**FAIL, "rawPayload": payload})
    assert single.status_code == 422, single.text
    assert single.json()["errors"] == [{"path": path, "message": INTEGER_RANGE}]
    batch = await api.post_and_settle(
        "globex-markets", [FAIL, {"rawPayload": {}, "normalizedContext": payload}]
    )
    assert batch.status_code == 422
    assert batch.json()["errors"] == [
        {"path": path.replace("body.rawPayload", "body[1].normalizedContext"), "message": INTEGER_RANGE}
    ]
    assert await cases(api) == ["KEPT-1"]  # the refused requests accepted nothing, and lost nothing


async def test_64_bit_integers_at_the_edges_are_carried_through_a_run(api: Api) -> None:
    payload = {**FAIL["rawPayload"], "big": 2**63 - 1, "small": -(2**63)}
    response = await api.post_and_settle("globex-markets", {**FAIL, "rawPayload": payload})
    assert response.status_code == 202
    detail = (await api.client.get("/exceptions/globex-markets/GLX-1001", headers=api.as_("viewer"))).json()
    assert detail["record"]["rawPayload"]["big"] == 2**63 - 1 and detail["record"]["rawPayload"][
        "small"
    ] == -(2**63)
    assert detail["resolutionStatus"] != "ESCALATED"


async def test_an_edited_plan_with_a_huge_integer_is_refused_at_its_path(api: Api) -> None:
    body = {"editedPlan": [{"type": "call_tool", "name": "n", "tool": "t", "arguments": {"n": 2**70}}]}
    response = await api.client.post(
        "/approvals/globex-markets/NOPE/approve", json=body, headers=api.as_("operator")
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"path": "body.editedPlan[0].call_tool.arguments.n", "message": INTEGER_RANGE}
    ]


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 65536
        sent += 65536


async def test_a_chunked_body_over_the_limit_is_a_413(api: Api) -> None:
    headers = {**api.as_("operator"), "Content-Type": "application/json"}
    for path in ("/exceptions/globex-markets", "/admin/globex-markets/policy"):
        response = await api.client.post(
            path, content=_chunks(api.settings.max_body_bytes + 1), headers=headers
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413, (path, response.text)
        assert response.json()["detail"] == f"request body over {api.settings.max_body_bytes} bytes"


async def test_percent_and_underscore_in_the_text_filter_are_literal(api: Api) -> None:
    await api.post_and_settle(
        "globex-markets", [{**FAIL, "exceptionId": i} for i in ("Q_Z9", "QAZ9", "Q-50")]
    )

    async def found(text: str) -> list[str]:
        page = await api.client.get(
            "/exceptions/globex-markets", params={"text": text}, headers=api.as_("viewer")
        )
        return sorted(item["exceptionId"] for item in page.json()["items"])

    assert await found("q_z") == ["Q_Z9"]  # ``_`` was any one character: QAZ9 matched too
    assert await found("%") == []  # ``%`` was anything: every case matched
    assert await found("q%9") == []
    assert await found("q-5") == ["Q-50"]
    assert await found("/") == []  # the escape character itself is literal


async def test_a_timestamp_without_an_offset_is_read_as_utc_and_the_case_says_so(api: Api) -> None:
    naive = await api.post_and_settle("globex-markets", {**FAIL, "timestamp": "2026-01-01T10:00:00"})
    aware = await api.post_and_settle(
        "globex-markets", {**FAIL, "exceptionId": "GLX-2001", "timestamp": "2026-01-01T10:00:00Z"}
    )
    assert naive.status_code == aware.status_code == 202
    get = lambda i: api.client.get(f"/exceptions/globex-markets/{i}", headers=api.as_("viewer"))  # noqa: E731
    read, reference = (await get("GLX-1001")).json(), (await get("GLX-2001")).json()
    assert read["resolutionStatus"] == reference["resolutionStatus"] != "ESCALATED"
    assert read["record"]["timestamp"] == reference["record"]["timestamp"] == "2026-01-01T10:00:00+00:00"
    intake = next(d for d in read["decisions"] if d["stage"] == "intake")
    assert {"kind": "input", "detail": "timestamp had no offset; read as UTC"} in intake["evidence"]
    other = next(d for d in reference["decisions"] if d["stage"] == "intake")
    assert all(e["kind"] != "input" or "offset" not in e["detail"] for e in other["evidence"])
    listed = await api.client.get(
        "/exceptions/globex-markets",
        params={"receivedFrom": "2000-01-01T00:00:00"},
        headers=api.as_("viewer"),
    )
    assert listed.status_code == 200 and listed.json()["total"] == 2


# -- Found by tests/test_schemathesis.py -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-01-01", "expected an RFC 3339 date-time"),  # pydantic alone: a naive midnight
        ("1700000000", "expected an RFC 3339 date-time"),  # pydantic alone: a Unix time
        ("-1", "expected an RFC 3339 date-time"),
        ("2026-01-01T10:00", "expected an RFC 3339 date-time"),
        ("yesterday", "expected an RFC 3339 date-time"),
        ("2026-13-01T00:00:00Z", "month"),
        ("0001-01-01T00:00:00+01:00", "out of range"),  # was a 500: year 0 in UTC
        ("9999-12-31T23:59:59-23:59", "out of range"),  # was a 500: year 10000 in UTC
    ],
)
async def test_a_received_filter_that_is_not_an_rfc_3339_time_is_a_422_naming_it(
    api: Api, value: str, message: str
) -> None:
    for name in ("receivedFrom", "receivedTo"):
        response = await api.client.get(
            "/exceptions/globex-markets", params={name: value}, headers=api.as_("viewer")
        )
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["path"] == f"query.{name}" and message in error["message"], error


async def test_received_filters_read_an_offset_and_a_naive_time_as_the_same_moment(api: Api) -> None:
    await api.post_and_settle("globex-markets", FAIL)
    [case] = (await api.client.get("/exceptions/globex-markets", headers=api.as_("viewer"))).json()["items"]
    moment = datetime.fromisoformat(case["receivedAt"]).astimezone(UTC)
    before, after = moment - timedelta(minutes=30), moment + timedelta(minutes=30)
    india = timezone(timedelta(hours=5, minutes=30))

    async def total(**params: str) -> int:
        response = await api.client.get(
            "/exceptions/globex-markets", params=params, headers=api.as_("viewer")
        )
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    naive = "%Y-%m-%dT%H:%M:%S"
    for start in (before.strftime(naive), before.isoformat(), before.astimezone(india).isoformat()):
        assert await total(receivedFrom=start) == 1, start
        assert await total(receivedTo=start) == 0, start
    for end in (after.strftime(naive), after.astimezone(india).isoformat().replace("T", " ")):
        assert await total(receivedFrom=end) == 0, end
        assert await total(receivedTo=end) == 1, end


async def test_a_method_a_path_does_not_serve_is_a_405_naming_every_method_it_serves(api: Api) -> None:
    """Generated from the document: a new route is covered the day it is added. Starlette named
    only the methods of the first route on the path (``PUT /exceptions/{tenantId}``: ``Allow:
    POST``, although the path serves ``GET`` too)."""
    document = (await api.client.get("/openapi.json")).json()
    served = ("GET", "POST", "PUT", "PATCH", "DELETE")
    checked = 0
    for path, item in document["paths"].items():
        methods = {m.upper() for m in item} & set(served)
        url = path.replace("{tenantId}", "globex-markets").replace("{stepOrder}", "1")
        url = re.sub(r"\{[^}]+\}", "anything", url)
        for method in (m for m in (*served, "OPTIONS") if m not in methods):
            response = await api.client.request(method, url, headers=api.as_("platform_admin"))
            assert response.status_code == 405, (method, path, response.status_code)
            assert response.headers["content-type"] == "application/problem+json"
            allow = {m.strip() for m in response.headers["allow"].split(",")}
            assert allow == methods, (method, path, response.headers["allow"])
            checked += 1
    assert checked > 100


async def test_a_body_in_a_media_type_the_operation_does_not_take_is_a_415(api: Api) -> None:
    """Generated from the document. A JSON route read a ``text/plain`` or form body as missing and
    answered 422 "Field required"; now every operation refuses what it does not declare, the
    declared types still pass (a pack upload's YAML included), and a charset parameter is fine."""
    document = (await api.client.get("/openapi.json")).json()
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            url = path.replace("{tenantId}", "globex-markets").replace("{stepOrder}", "1")
            url = re.sub(r"\{[^}]+\}", "anything", url)
            headers = api.as_("platform_admin")
            for media in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
                response = await api.client.request(
                    method, url, content=b"{}", headers={**headers, "Content-Type": media}
                )
                assert response.status_code == 415, (method, path, media, response.text)
                [error] = response.json()["errors"]
                assert error["path"] == "header.Content-Type", error
                checked += 1
            for media in body["content"]:
                response = await api.client.request(
                    method, url, content=b"{}", headers={**headers, "Content-Type": f"{media}; charset=utf-8"}
                )
                assert response.status_code != 415, (method, path, media, response.text)
    assert checked >= 3 * 14
