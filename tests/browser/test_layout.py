"""Pages that must fit their window: the API reference on a phone, the admin's live connections."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import badge, create_room

pytestmark = pytest.mark.browser

OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
# What sticks out past the window's right edge (for a failure's message).
STICKING_OUT = """() => [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
    .slice(0, 10)
    .map(e => `${e.tagName.toLowerCase()}.${e.className}: ${e.getBoundingClientRect().right}`)"""


def assert_fits(page) -> None:
    assert page.evaluate(OVERFLOW) <= 0, page.evaluate(STICKING_OUT)


def test_the_api_reference_fits_a_phone(require_chromium, people):
    bob = people("bob")
    page = bob.context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(bob.server.url + "/api/docs/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert_fits(page)
    # Rendered Markdown: no literal backticks in what a reader sees.
    assert "`" not in page.locator("main").inner_text()


def test_the_live_connections_page_fits_1280_px_with_local_times(
    require_chromium, people, live_database
):
    boss = people("boss", staff=True)
    live_database.shell(
        "from django.contrib.auth import get_user_model as g;"
        f"g().objects.filter(username={boss.username!r}).update(is_superuser=True)"
    )
    long_name = people("a-rather-long-username-for-the-table")
    slug = create_room(long_name)
    room = long_name.open(f"/rooms/{slug}/")
    expect(badge(room)).to_have_text("Live")
    page = boss.context.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(boss.server.url + "/admin/realtime/liveconnection/")
    table = page.locator("table")
    expect(table.get_by_text(long_name.username).first).to_be_visible()
    assert_fits(page)
    header = table.locator("th", has_text="Connected since")
    column = header.evaluate("th => th.cellIndex")
    since = table.locator(f"tbody tr td:nth-child({column + 1})").first.inner_text()
    assert not re.search(r"\d{4}-\d\d-\d\dT", since), since
    assert re.search(r"\b(19|20)\d\d\b", since), since


def test_the_browsers_own_favicon_request_gets_the_sites_icon(require_chromium, people):
    bob = people("bob")
    page = bob.context.new_page()
    response = page.goto(bob.server.url + "/favicon.ico")
    assert response.ok
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.url.startswith(bob.server.url + "/static/")
