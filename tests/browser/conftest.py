"""
Browser fixtures: Debian's Chromium driven by Playwright (sync API) against a
real `manage.py serve` (daphne) process, over the session's live database.

Each test gets its own server (the `daphne_server` fixture) and its own
browser contexts; the browser process is shared by the package's tests.
"""

import shutil
import uuid

import pytest

from deploy.client import HttpSession
from tests.conftest import CHROMIUM, need_service
from tests.live import LiveServer

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-test-pass-1"
# Conditions met within a second or two normally; generous for a loaded CI machine.
TIMEOUT_MS = 15_000


@pytest.fixture(scope="package")
def browser():
    need_service(shutil.which(CHROMIUM) is not None, f"Chromium not installed at {CHROMIUM}")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


class Visitor:
    """A person at the site: an HTTP session (for REST) and a browser context with its cookie."""

    def __init__(self, server: LiveServer, browser, session: HttpSession, *, signed_in=True):
        self.server = server
        self.session = session
        self.username = session.username
        self.context = browser.new_context(viewport={"width": 1100, "height": 760})
        self.context.set_default_timeout(TIMEOUT_MS)
        if signed_in:
            self.context.add_cookies(
                [
                    {"name": c.name, "value": c.value, "url": server.url}
                    for c in session.jar
                    if c.name in ("sessionid", "csrftoken")
                ]
            )
        self.problems: list[str] = []

    def sign_in_through_the_page(self, password: str = PASSWORD):
        """Sign this browser in through the real sign-in form; the room list opens."""
        page = self.open("/login/")
        page.get_by_label("Username").fill(self.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(self.server.url + "/")
        return page

    def open(self, path: str):
        """A new tab at `path`; uncaught errors and CSP violations are recorded in `problems`."""
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        page.on(
            "console",
            lambda message: (
                self.problems.append(f"console: {message.text}")
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )
        page.goto(self.server.url + path)
        return page


@pytest.fixture
def people(browser, daphne_server, live_database):
    """Make visitors: `people("alice")` signs up a fresh user; `staff=True` for a staff one."""
    made: list[Visitor] = []

    def make(
        prefix: str = "user", *, staff: bool = False, signed_in: bool = True, exact: bool = False
    ) -> Visitor:
        name = prefix if exact else unique(prefix)
        if staff:
            live_database.create_user(name, PASSWORD, staff=True)
            session = HttpSession(daphne_server).login(name, PASSWORD)
        else:
            session = HttpSession(daphne_server).signup(name, PASSWORD)
        visitor = Visitor(daphne_server, browser, session, signed_in=signed_in)
        made.append(visitor)
        return visitor

    yield make
    for visitor in made:
        visitor.context.close()
    for visitor in made:
        assert not visitor.problems, visitor.problems


def badge(page):
    """The words of the page's one connection status (its live region: changes rarely)."""
    return page.locator("[data-connection-badge]")


def connection_status(page):
    """The whole connection status in the header: the words, the countdown, the buttons."""
    return page.locator("[data-connection-status]")


def outbox(page):
    """The messages this page sent that are not shown as stored yet (pending, failed)."""
    return page.locator("[data-outbox] > li")


def messages(page):
    return page.locator("[data-messages] > li.message")


def send(page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def create_room(owner: Visitor, *, private: bool = False, name: str = "", slug: str = "") -> str:
    slug = slug or unique("room-")
    status, body = owner.session.request(
        "POST",
        "/api/rooms/",
        {"slug": slug, "name": name or f"Room {slug[-6:]}", "is_private": private},
    )
    assert status == 201, body
    return slug
