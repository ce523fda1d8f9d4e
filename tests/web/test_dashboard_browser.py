"""The dashboard in a real browser (Debian's chromium, driven by playwright) against a
real ``cadenza serve`` on 127.0.0.1 and a loopback target, as a person uses it.

Every test's browser context records each request the page makes and each console
error: at the end no request may have gone to another host, and no error (a script
failure or a Content Security Policy violation) may have happened. Waits are
generous hang guards; the one event that depends on timing (a run finishing) is
released by the test itself through the target's hold.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_kit import add_endpoint, call
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

from cadenza.testing.live import LiveServer, LoopbackTarget, serve

CHROMIUM = "/usr/bin/chromium"
_REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")
WAIT_MS = 60_000
MAX_TABS = 300

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="make browser installs chromium"),
]
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def target() -> Iterator[LoopbackTarget]:
    with LoopbackTarget() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"CADENZA_PLANNER_DEBOUNCE_SECONDS": "1"}
    with serve(tmp_path_factory.mktemp("live"), env) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Watched:
    """A browser context with its requests and console errors recorded."""

    def __init__(self, browser: Browser, **options: object) -> None:
        self.context: BrowserContext = browser.new_context(**options)  # type: ignore[arg-type]
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.context.on("weberror", lambda error: self.errors.append(str(error.error)))

    def page(self) -> Page:
        page = self.context.new_page()
        page.on("console", self._console)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        # A form refused with 4xx is the dashboard answering, not a failure of the page.
        if message.type == "error" and not _REFUSED.match(message.text):
            self.errors.append(message.text)

    def check(self, server: LiveServer) -> None:
        own = urlsplit(server.url).netloc
        assert [u for u in self.requests if urlsplit(u).netloc not in (own, "")] == []
        assert self.errors == []


@pytest.fixture
def watched(browser: Browser, server: LiveServer) -> Iterator[Watched]:
    context = Watched(browser, viewport={"width": 1280, "height": 900})
    yield context
    context.context.close()
    context.check(server)


def sign_in(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2F$"))
    page.get_by_label("E-mail").fill(server.email)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


@pytest.fixture
def page(watched: Watched, server: LiveServer) -> Page:
    signed_in = watched.page()
    sign_in(signed_in, server)
    return signed_in


def endpoint_page(page: Page, server: LiveServer, endpoint_id: str) -> None:
    page.goto(f"{server.url}/endpoints/{endpoint_id}")
    expect(page.locator("body.is-live")).to_be_attached()


def test_a_person_creates_a_job_and_an_endpoint_and_sees_its_first_run_arrive_live(
    page: Page, server: LiveServer, target: LoopbackTarget
) -> None:
    target.hold("/first")
    page.locator("summary", has_text="New job").click()
    job_form = page.locator("form[action='/controls/create_job']")
    job_form.get_by_label("Name").fill("storefront")
    job_form.get_by_role("button", name="Create job").click()
    expect(page).to_have_url(re.compile(r"/jobs/job_"))
    page.locator("summary", has_text="Add endpoint").click()
    form = page.locator("form[action='/controls/add_endpoint']")
    form.locator("input[name='name']").fill("first")
    form.get_by_label("URL").fill(f"{target.base}/first")
    form.locator("input[name='baseline.interval_seconds']").fill("2")
    form.get_by_role("button", name="Add endpoint").click()
    expect(page).to_have_url(re.compile(r"/endpoints/ep_"))
    expect(page.locator("body.is-live")).to_be_attached()
    runs = page.locator("#endpoint-live table.runs tbody")
    expect(runs).to_contain_text("No runs yet.")
    page.evaluate("window.sameDocument = true")
    target.release("/first")
    expect(runs.locator("a").first).to_be_visible()
    expect(runs).to_contain_text("success")
    assert page.evaluate("window.sameDocument") is True


def test_an_interval_hint_moves_the_next_run_and_changes_the_explanation(
    page: Page, server: LiveServer, target: LoopbackTarget
) -> None:
    endpoint_id = add_endpoint(server, f"{target.base}/hourly", 3600, "hourly")
    endpoint_page(page, server, endpoint_id)
    next_run = page.locator("#next-run-at")
    before = next_run.inner_text()
    explanation = page.locator("#explanation")
    expect(explanation).not_to_contain_text("hint-interval")
    form = page.locator("form[action='/controls/interval_hint']")
    form.get_by_label("Interval (seconds)").fill("600")
    form.get_by_label("Reason").fill("watch the deploy")
    form.get_by_role("button", name="Apply interval hint").click()
    expect(page.locator("form[action='/controls/interval_hint'] .note")).to_have_text(
        "Interval hint applied."
    )
    expect(explanation).to_contain_text("hint-interval")
    expect(next_run).not_to_have_text(before)
    expect(page.locator("#hints")).to_contain_text("watch the deploy")


def test_queued_reminders_are_listed_and_cancelled_one_by_one(
    page: Page, server: LiveServer, target: LoopbackTarget
) -> None:
    endpoint_id = add_endpoint(server, f"{target.base}/reminded", 3600, "reminded")
    endpoint_page(page, server, endpoint_id)
    form = page.locator("form[action='/controls/one_shot']")
    for days in (7, 14):
        form.get_by_label("Delay (seconds)").fill(str(days * 86400))
        form.get_by_label("Reason").fill(f"reminder day {days}")
        form.get_by_role("button", name="Schedule one run").click()
        expect(page.locator("#hints li.one-shot", has_text=f"reminder day {days}")).to_be_visible()
    queued = page.locator("#hints li.one-shot")
    expect(queued).to_have_count(2)
    queued.filter(has_text="reminder day 7").get_by_role("button", name="Cancel").click()
    expect(queued).to_have_count(1)
    expect(queued).to_contain_text("reminder day 14")
    _, endpoint = call(server, "GET", f"/endpoints/{endpoint_id}")
    assert [s["reason"] for s in endpoint["hints"]["one_shots"]] == ["reminder day 14"]


def test_a_bad_value_shows_its_error_beside_the_field_and_stores_nothing(
    page: Page, server: LiveServer, target: LoopbackTarget
) -> None:
    endpoint_id = add_endpoint(server, f"{target.base}/steady", 3600, "steady")
    endpoint_page(page, server, endpoint_id)
    form = page.locator("form[action='/controls/interval_hint']")
    form.get_by_label("Interval (seconds)").fill("0")
    form.get_by_role("button", name="Apply interval hint").click()
    field = form.get_by_label("Interval (seconds)")
    expect(field).to_have_attribute("aria-invalid", "true")
    error = form.locator(".field-error")
    expect(error).to_have_text("Input should be greater than or equal to 1")
    assert error.get_attribute("id") in (field.get_attribute("aria-describedby") or "")
    assert field.evaluate("f => f === document.activeElement")
    _, endpoint = call(server, "GET", f"/endpoints/{endpoint_id}")
    assert endpoint["hints"]["interval"] is None
    _, audit = call(server, "GET", f"/audit?target_id={endpoint_id}")
    assert [e["action"] for e in audit["items"]] == ["add_endpoint"]


def test_approving_a_planner_proposal_applies_it(
    page: Page, server: LiveServer, target: LoopbackTarget
) -> None:
    target.respond("/flaky", 503)
    endpoint_id = add_endpoint(server, f"{target.base}/flaky", 3, "flaky")
    endpoint_page(page, server, endpoint_id)
    page.locator("summary", has_text="Planner settings and rules").click()
    form = page.locator("form[action='/controls/planner_settings']")
    form.get_by_label("Approval").check()
    rules = [
        {
            "name": "watch-closely",
            "when": [{"kind": "outcome", "statuses": ["failure"]}],
            "then": [{"verb": "interval_hint", "interval_seconds": 7, "ttl_seconds": 600}],
        }
    ]
    form.get_by_label("Rules").fill(json.dumps(rules))
    form.get_by_role("button", name="Save planner settings").click()
    expect(page.locator("form[action='/controls/planner_settings'] .note")).to_have_text(
        "Planner settings saved."
    )
    proposal = page.locator("li.proposal").first
    expect(proposal).to_contain_text("apply_interval_hint")
    proposal.get_by_role("button", name="Approve").click()
    expect(page.locator("#hints")).to_contain_text("every 7 s")
    expect(page.locator("#hints")).to_contain_text("Approved planner proposal")
    _, decided = call(server, "GET", f"/proposals?endpoint_id={endpoint_id}&status=applied")
    assert decided["items"]
    assert decided["items"][0]["decided_by"]["kind"] == "user"


def test_a_key_created_on_the_keys_page_works_until_it_is_revoked(
    page: Page, server: LiveServer
) -> None:
    page.get_by_role("link", name="API keys").click()
    form = page.locator("form[action='/controls/create_key']")
    form.get_by_label("Name").fill("ci-bot")
    form.get_by_label("jobs:read").check()
    form.get_by_label("Kind").select_option("user")
    form.get_by_role("button", name="Create key").click()
    secret = page.locator(".secret input")
    expect(secret).to_have_value(re.compile(r"^cdz_"))
    status, me = call(server, "GET", "/me", key=secret.input_value())
    assert status == 200
    row = page.locator(f"tr[data-key='{me['actor']['id']}']")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    status, _ = call(server, "GET", "/me", key=secret.input_value())
    assert status == 401


def test_a_channel_added_on_the_alerts_page_gets_a_test_notification(
    page: Page, server: LiveServer, target: LoopbackTarget
) -> None:
    page.get_by_role("link", name="Alerts").click()
    form = page.locator("form[action='/controls/create_channel']")
    form.locator("input[name='name']").fill("ops-hook")
    form.locator("select[name='kind']").select_option("webhook")
    form.locator("input[name='url']").fill(f"{target.base}/alerts-hook")
    form.get_by_role("button", name="Add channel").click()
    row = page.locator("tr[data-channel]").filter(has_text="ops-hook")
    expect(row).to_contain_text("webhook")
    row.get_by_role("button", name="Send a test").click()
    for _ in range(300):  # the server posts it; wait for it, bounded, whatever the speed
        if target.hits["/alerts-hook"]:
            break
        page.wait_for_timeout(100)
    assert target.hits["/alerts-hook"] == 1
    _, channels = call(server, "GET", "/channels")
    assert [c["name"] for c in channels["items"]] == ["ops-hook"]


def test_after_signing_out_the_old_session_cookie_is_refused(
    page: Page, watched: Watched, server: LiveServer
) -> None:
    session = next(c for c in watched.context.cookies() if c["name"] == "cadenza_session")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/sign-in")
    replay = watched.page()
    watched.context.add_cookies([session])
    replay.goto(f"{server.url}/")
    expect(replay).to_have_url(re.compile(r"/sign-in"))
    status, _ = call(server, "GET", "/me", cookie=f"cadenza_session={session['value']}")
    assert status == 401


def test_the_interval_hint_can_be_given_with_the_keyboard_alone(
    page: Page, server: LiveServer, target: LoopbackTarget
) -> None:
    endpoint_id = add_endpoint(server, f"{target.base}/keys", 3600, "keyboard")
    endpoint_page(page, server, endpoint_id)
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "interval_seconds":
            break
    form = page.locator("form[action='/controls/interval_hint']")
    expect(form.get_by_label("Interval (seconds)")).to_be_focused()
    page.keyboard.type("900")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("name", "ttl_seconds")
    page.keyboard.press("Tab")
    page.keyboard.type("typed, not clicked")
    page.keyboard.press("Enter")
    expect(page.locator("form[action='/controls/interval_hint'] .note")).to_be_focused()
    expect(page.locator("#hints")).to_contain_text("typed, not clicked")


@pytest.mark.parametrize("width", [390, 1280], ids=["phone", "desktop"])
def test_every_page_fits_the_screen_without_scrolling_sideways(
    browser: Browser, server: LiveServer, target: LoopbackTarget, width: int
) -> None:
    endpoint_id = add_endpoint(server, f"{target.base}/narrow", 3600, "narrow-screen")
    _, endpoint = call(server, "GET", f"/endpoints/{endpoint_id}")
    watched = Watched(browser, viewport={"width": width, "height": 800})
    try:
        page = watched.page()
        sign_in(page, server)
        for path in ("/", f"/jobs/{endpoint['job_id']}", f"/endpoints/{endpoint_id}", "/runs",
                     "/audit", "/keys", "/alerts"):  # fmt: skip
            page.goto(server.url + path)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, path
    finally:
        watched.context.close()
    watched.check(server)


def test_the_api_docs_render_from_this_server_alone(watched: Watched, server: LiveServer) -> None:
    page = watched.page()
    page.goto(f"{server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Cadenza")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
