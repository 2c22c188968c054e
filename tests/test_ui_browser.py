"""The operator UI in a real browser: Debian's chromium, headless, driven by Playwright against
`exops start` running in its own process with the sample exceptions ingested.

Each test leaves a screenshot in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.ui_browser_helpers import SCREENSHOTS, Product, chromium_path, ingest_examples, start_product

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")

Page = playwright_sync.Page
expect = playwright_sync.expect


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    started = start_product(tmp_path_factory.mktemp("exops"))
    running = next(started)
    ingest_examples(running)
    yield running
    started.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_sync.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


VIOLATIONS: list[str] = []
"""Content-Security-Policy violations seen by any page of the running test (checked after each)."""
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


@pytest.fixture(autouse=True)
def no_csp_violation() -> Iterator[None]:
    """Every page a test opens runs under the server's Content-Security-Policy without tripping it:
    a blocked script, style or fetch would be a UI that silently does not work."""
    VIOLATIONS.clear()
    yield
    assert VIOLATIONS == [], VIOLATIONS


def _page(browser: object, width: int = 1366) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    page: Page = context.new_page()
    page.set_default_timeout(15_000)
    page.add_init_script(REPORT_VIOLATIONS)

    def seen(message: object) -> None:
        text = message.text  # type: ignore[attr-defined]
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            VIOLATIONS.append(f"{page.url}: {text}")

    page.on("console", seen)
    return page


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, product: Product, role: str, tenant: str = "globex-markets") -> None:
    page.goto(f"{product.url}/ui/")
    expect(page).to_have_title("Sign in · exops")
    page.get_by_label("API key or token").fill(product.key(role, tenant))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{product.url}/ui/t/{tenant}/exceptions")


def csrf_of(page: Page) -> str:
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


def test_sign_in_shows_tenant_and_domain(product: Product, browser: object) -> None:
    page = _page(browser)
    page.goto(f"{product.url}/ui/")
    shot(page, "01-sign-in")
    sign_in(page, product, "operator")
    banner = page.get_by_role("banner")
    expect(banner).to_contain_text("globex-markets")
    expect(banner).to_contain_text("capital-markets")
    shot(page, "02-exceptions")


def test_filter_the_list_and_open_a_case(product: Product, browser: object) -> None:
    page = _page(browser)
    sign_in(page, product, "operator")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(7)
    page.get_by_label("Status").select_option("PENDING_APPROVAL")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"status=PENDING_APPROVAL"))
    count = rows.count()
    assert 0 < count < 7
    for index in range(count):
        expect(rows.nth(index)).to_contain_text("PENDING_APPROVAL")
    shot(page, "03-exceptions-filtered")
    page.get_by_role("link", name="GLX-1003").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("GLX-1003")
    for stage in ("Intake", "Triage", "Policy", "Supervisor", "Resolution"):
        expect(page.locator("main")).to_contain_text(stage)
    shot(page, "04-exception-detail")


def test_complete_a_playbook_step(product: Product, browser: object) -> None:
    page = _page(browser)
    sign_in(page, product, "operator")
    page.goto(f"{product.url}/ui/t/globex-markets/exceptions/GLX-1002")
    complete = page.get_by_role("button", name=re.compile(r"Complete step \d+"))
    order = re.search(r"\d+", complete.inner_text())
    assert order is not None
    page.get_by_label(re.compile(r"^Notes")).fill("booked in the OMS by hand")
    shot(page, "05-manual-step")
    complete.click()
    expect(page.get_by_role("status").first).to_contain_text(f"Step {order[0]} completed.")
    expect(page.locator("main")).to_contain_text("booked in the OMS by hand")
    expect(page.get_by_role("button", name=f"✓ Complete step {order[0]}")).to_have_count(0)


def test_approve_a_pending_case_and_watch_its_status_change(product: Product, browser: object) -> None:
    page = _page(browser)
    sign_in(page, product, "operator")
    page.goto(f"{product.url}/ui/t/globex-markets/approvals")
    expect(page.locator("main")).to_contain_text("GLX-1003")
    shot(page, "06-approvals")
    page.goto(f"{product.url}/ui/t/globex-markets/exceptions/GLX-1003")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("PENDING_APPROVAL")
    page.get_by_label(re.compile(r"^Comment")).first.fill("checked with the desk")
    page.get_by_role("button", name="✓ Approve").click()
    expect(page.get_by_role("status").first).to_contain_text("Approved")
    expect(heading).not_to_contain_text("PENDING_APPROVAL")
    expect(page.get_by_role("button", name="✓ Approve")).to_have_count(0)
    shot(page, "07-approved")


def test_a_viewer_sees_no_actions_and_the_server_refuses_anyway(product: Product, browser: object) -> None:
    page = _page(browser)
    sign_in(page, product, "viewer")
    page.goto(f"{product.url}/ui/t/globex-markets/exceptions/GLX-1005")
    expect(page.locator("main")).to_be_visible()
    main_buttons = page.locator("main button")
    expect(main_buttons).to_have_count(0)
    url = f"{product.url}/ui/t/globex-markets/exceptions/GLX-1005/recalculate"
    refused = page.request.post(url, form={"csrf_token": csrf_of(page)}, max_redirects=0)
    assert refused.status == 403 and "viewer may not do this" in refused.text()
    shot(page, "08-viewer")


def test_a_post_without_the_csrf_token_is_refused(product: Product, browser: object) -> None:
    page = _page(browser)
    sign_in(page, product, "operator")
    url = f"{product.url}/ui/t/globex-markets/exceptions/GLX-1005/recalculate"
    refused = page.request.post(url, form={"note": "no token"}, max_redirects=0)
    assert refused.status == 403 and "CSRF" in refused.text()
    forged = page.request.post(url, form={"csrf_token": "guessed"}, max_redirects=0)
    assert forged.status == 403


@pytest.mark.parametrize(
    ("path", "name"), [("dashboard", "09-dashboard"), ("packs", "10-packs"), ("tools", "11-tools")]
)
def test_every_other_page_renders_at_laptop_and_tablet_width(
    product: Product, browser: object, path: str, name: str
) -> None:
    for width in (1366, 768):
        page = _page(browser, width)
        sign_in(page, product, "admin")
        page.goto(f"{product.url}/ui/t/globex-markets/{path}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(path.capitalize())
        expect(page.get_by_role("link", name=path.capitalize(), exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways at {width}px"
        shot(page, f"{name}-{width}")


def test_an_approval_without_a_plan_cannot_be_approved_and_is_taken_over(
    product: Product, browser: object
) -> None:
    """GLX-1004, the CRITICAL $75m fail with no plan: no Approve button; Reject and Skip ask for a reason."""
    page = _page(browser)
    sign_in(page, product, "operator")
    page.goto(f"{product.url}/ui/t/globex-markets/exceptions/GLX-1004")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("PENDING_APPROVAL")
    expect(page.locator(".approval-box")).to_contain_text("No plan is proposed")
    expect(page.get_by_role("button", name="✓ Approve")).to_have_count(0)
    reason = page.get_by_label(re.compile(r"^Reason for rejecting"))
    page.get_by_role("button", name="✗ Reject").click()  # no reason: the browser keeps the form
    assert reason.evaluate("element => element.validity.valueMissing")
    expect(heading).to_contain_text("PENDING_APPROVAL")
    shot(page, "12-no-plan")
    page.get_by_role("button", name="☞ Take over").click()
    expect(page.get_by_role("status").first).to_contain_text("You took the case over")
    expect(heading).to_contain_text("IN_PROGRESS")
    skip = page.get_by_role("button", name="↷ Skip step 1")
    skip.click()  # no reason: nothing is sent
    expect(heading).to_contain_text("IN_PROGRESS")
    page.get_by_label(re.compile(r"^Reason for skipping")).fill("DTC fixed it upstream")
    skip.click()
    expect(heading).to_contain_text("CLOSED_WITHOUT_ACTION")
    expect(page.locator("main")).to_contain_text("Skipped because: DTC fixed it upstream")
    shot(page, "13-closed-without-action")


def test_a_link_cannot_put_a_message_on_the_page(product: Product, browser: object) -> None:
    page = _page(browser)
    sign_in(page, product, "operator")
    forged = "Your session expired. Re-enter your API key at https://evil.example/login"
    page.goto(f"{product.url}/ui/t/globex-markets/exceptions?error={forged}&notice={forged}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("evil.example")


def test_the_api_reference_runs_offline_under_the_policy(product: Product, browser: object) -> None:
    page = _page(browser)
    outside: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(product.url) else outside.append(request.url),
    )
    page.goto(f"{product.url}/docs")
    expect(page.get_by_text("/exceptions/{tenantId}/{exceptionId}/events").first).to_be_visible()
    shot(page, "14-docs")
    assert outside == []


def test_a_page_cannot_be_framed_by_another_site(product: Product, browser: object) -> None:
    page = _page(browser)
    page.set_content(f'<iframe id="f" src="{product.url}/ui/login"></iframe>')
    frame = page.frame_locator("#f")
    expect(frame.get_by_label("API key or token")).to_have_count(0)
    VIOLATIONS.clear()  # the refusal is itself reported as a (wanted) frame-ancestors violation
