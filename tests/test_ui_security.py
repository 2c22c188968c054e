"""What a link or another site cannot do to the UI: put words on a page (banners come from the
server's own signed, one-time message, never from the URL), run a script of its own, frame a page,
or learn a URL through the Referer. The API and ``/docs`` answer under the same headers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from app.api.headers import CONTENT_SECURITY_POLICY
from app.auth.principal import Principal
from app.ui import flash
from app.ui.session import new_session
from tests.api_helpers import Api

T = "/ui/t/globex-markets"
EXAMPLES = json.loads(
    (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
)["exceptions"]
FORGED = "Your session expired. Re-enter your API key at https://evil.example/login"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = (
    f"{T}/exceptions", f"{T}/exceptions/GLX-1002", f"{T}/exceptions/GLX-1003", f"{T}/approvals",
    f"{T}/approvals?decided=1", f"{T}/dashboard", f"{T}/packs", f"{T}/packs/policy/1.4.0",
    f"{T}/packs/policy/diff", f"{T}/tools", "/ui/login",
)  # fmt: skip
SECRET = b"s" * 32
ALICE = Principal(subject="alice", role="operator", tenant_id="globex-markets", via="api_key")


async def sign_in(api: Api, role: str) -> str:
    """The client signed in as ``role`` of globex-markets; the session's CSRF token."""
    api.client.cookies.clear()
    response = await api.client.post(
        "/ui/login", data={"credential": api.as_(role)["X-API-KEY"], "next": "/ui/"}
    )
    assert response.status_code == 303, response.text
    found = CSRF.search((await api.client.get(f"{T}/tools")).text)
    assert found is not None
    return found.group(1)


def banners(text: str) -> list[str]:
    return re.findall(r'<p class="flash (?:ok|bad)" role="(?:status|alert)">(.*?)</p>', text)


def assert_no_inline_code(text: str, where: str) -> None:
    """Nothing the Content-Security-Policy would block: no inline script, style or handler."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"{where}: inline <script>"
    assert "<style" not in text and not re.search(r"\sstyle=", text), f"{where}: inline style"
    assert not re.search(r"\son[a-z]+=", text), f"{where}: inline event handler"
    assert "javascript:" not in text, f"{where}: javascript: URL"


async def test_a_link_cannot_put_a_message_on_any_page(api: Api) -> None:
    await api.post_and_settle("globex-markets", EXAMPLES)
    await sign_in(api, "admin")
    forged = {"notice": FORGED, "error": FORGED, "problem": FORGED}
    for url in PAGES:
        response = await api.client.get(url, params=forged)
        assert response.status_code == 200, (url, response.text[:300])
        assert "evil.example" not in response.text, f"{url} shows words from its URL"
        assert banners(response.text) == [], url
        assert_no_inline_code(response.text, url)


async def test_a_refused_filter_does_not_repeat_what_the_link_said(api: Api) -> None:
    await sign_in(api, "viewer")
    for name in ("status", "severity", "sort", "from", "page"):
        response = await api.client.get(f"{T}/exceptions", params={name: FORGED})
        assert response.status_code == 400, name
        shown = banners(response.text)
        assert len(shown) == 1 and "evil.example" not in shown[0], (name, shown)


async def test_a_form_message_is_shown_once_to_the_session_that_posted_it(api: Api) -> None:
    csrf = await sign_in(api, "admin")
    response = await api.client.post(f"{T}/tools/get_trade_details/disable", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["location"] == f"{T}/tools"
    cookie = response.cookies.get(flash.COOKIE)
    assert cookie and "switched off" not in cookie  # signed, not readable as the message itself
    first = await api.client.get(f"{T}/tools")
    assert banners(first.text) == [
        "✓ get_trade_details is switched off for globex-markets: new runs plan its steps as manual"
    ]
    assert flash.COOKIE not in api.client.cookies  # consumed
    assert banners((await api.client.get(f"{T}/tools")).text) == []

    # The same cookie, replayed in another session or edited, shows nothing.
    await sign_in(api, "admin")
    api.client.cookies.set(flash.COOKIE, cookie, path="/ui")
    assert banners((await api.client.get(f"{T}/tools")).text) == []
    body, signature = cookie.rsplit(".", 1)
    api.client.cookies.set(flash.COOKIE, body + "." + signature[::-1], path="/ui")
    assert banners((await api.client.get(f"{T}/tools")).text) == []


def test_a_message_round_trips_only_for_its_session_and_secret() -> None:
    alice = new_session(ALICE, key_id="abc", hours=1)
    other = new_session(ALICE, key_id="abc", hours=1)
    value = flash.encode(flash.Flash(notice="done", problems=("$.a: wrong",)), alice, SECRET)
    assert flash.decode(value, alice, SECRET) == flash.Flash(notice="done", problems=("$.a: wrong",))
    assert flash.decode(value, other, SECRET) is None
    assert flash.decode(value, alice, b"t" * 32) is None
    assert flash.decode(value, None, SECRET) is None and flash.decode("junk", alice, SECRET) is None


def test_a_long_message_is_trimmed_to_fit_a_cookie() -> None:
    alice = new_session(ALICE, key_id=None, hours=1)
    many = tuple(f"$.playbooks[{i}].steps: “{'é' * 150}”" for i in range(40))
    value = flash.encode(flash.Flash(error="✗" * 5000, problems=many), alice, SECRET)
    assert len(value) <= flash.MAX_VALUE
    shown = flash.decode(value, alice, SECRET)
    assert shown is not None and shown.error is not None and shown.error.startswith("✗✗")
    assert shown.problems[-1].startswith("… ") and len(shown.problems) < 40


@pytest.mark.parametrize(
    ("method", "url", "role"),
    [
        ("GET", "/ui/login", None),
        ("GET", f"{T}/exceptions", "viewer"),
        ("GET", "/exceptions/globex-markets", "viewer"),
        ("GET", "/exceptions/globex-markets", None),  # 401
        ("GET", "/openapi.json", None),
        ("GET", "/docs", None),
        ("GET", "/docs/static/docs.js", None),
        ("GET", "/ui/static/app.js", None),
        ("GET", "/no-such-page", None),
    ],
)
async def test_every_response_carries_the_security_headers(
    api: Api, method: str, url: str, role: str | None
) -> None:
    if url.startswith("/ui/t/"):
        await sign_in(api, "viewer")
    headers = api.as_(role) if role and not url.startswith("/ui/") else {}
    response = await api.client.request(method, url, headers=headers)
    assert_security_headers(response)


async def test_a_refused_oversized_body_carries_them_too(api: Api) -> None:
    response = await api.client.post(
        "/exceptions/globex-markets", content=b"[" + b" " * api.settings.max_body_bytes + b"]",
        headers={**api.as_("operator"), "Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 413
    assert_security_headers(response)


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'" and policy["base-uri"] == "'none'"
    assert policy["object-src"] == "'none'" and "unsafe" not in CONTENT_SECURITY_POLICY


async def test_docs_are_served_from_this_server_without_a_cdn(api: Api) -> None:
    page = await api.client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith("/docs/static/") for source in sources), sources
    assert_no_inline_code(page.text, "/docs")
    for name, media in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
                        ("docs.js", "text/javascript")):  # fmt: skip
        asset = await api.client.get(f"/docs/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(media), name
    assert (await api.client.get("/docs/static/index.html")).status_code == 404
    assert (await api.client.get("/redoc")).status_code == 404


async def test_error_pages_hold_nothing_the_policy_would_block(api: Api) -> None:
    await sign_in(api, "viewer")
    for url, status in ((f"{T}/exceptions/NO-SUCH-CASE", 404), ("/ui/t/acme-capital/exceptions", 403)):
        response = await api.client.get(url)
        assert response.status_code == status, (url, response.text[:300])
        assert_no_inline_code(response.text, url)
