"""The staff dashboard: live charts from the `dashboard` topic; staff only."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import badge, create_room

pytestmark = pytest.mark.browser


def test_the_dashboard_chart_moves_while_messages_are_sent(require_chromium, people):
    admin, bob = people("admin", staff=True), people("bob")
    slug = create_room(bob)
    page = admin.open("/dashboard/")
    expect(badge(page)).to_have_text("Live")
    expect(page.locator('[data-stat="connections"]')).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(page.locator('[data-stat="users_online"]')).to_have_text(re.compile(r"^[1-9]\d*$"))
    chart = page.locator('[data-chart="messages"] canvas')
    expect(chart).to_be_visible()
    before = chart.screenshot()

    for n in range(15):
        status, _ = bob.session.request("POST", f"/api/rooms/{slug}/messages/", {"text": f"m{n}"})
        assert status == 201
    # 15 messages within the 10 s window: at least 1.5 a second on the next tick.
    expect(page.locator('[data-stat="messages_per_second"]')).to_have_text(
        re.compile(r"^(1\.[5-9]|[2-9]|\d\d)")
    )
    after = chart.screenshot()
    assert after != before
    # The machine's counters, the same /metrics serves: the 15 messages were stored.
    expect(page.locator('[data-total="publishes"]')).to_have_text(
        re.compile(r"^(1[5-9]|[2-9]\d|\d{3,})")
    )


def test_a_user_who_is_not_staff_cannot_open_the_dashboard(require_chromium, people):
    bob = people("bob")
    page = bob.context.new_page()
    response = page.goto(bob.server.url + "/dashboard/")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Forbidden")
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
