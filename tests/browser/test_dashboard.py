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
        re.compile(r"^(1[5-9]|[2-9]\d|[1-9][\d,]{2,})")
    )


def test_a_user_who_is_not_staff_cannot_open_the_dashboard(require_chromium, people):
    bob = people("bob")
    page = bob.context.new_page()
    response = page.goto(bob.server.url + "/dashboard/")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Forbidden")
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)


def chart(page, name: str = "messages"):
    return page.locator(f'[data-chart="{name}"]')


def points(page, name: str = "messages") -> int:
    return int(chart(page, name).get_attribute("data-points") or 0)


def test_the_charts_start_with_the_last_minutes_and_announcing_keeps_them(require_chromium, people):
    admin = people("admin", staff=True)
    first = admin.open("/dashboard/")
    expect(badge(first)).to_have_text("Live")
    # A few seconds of samples, kept by the server while this page watches.
    expect(chart(first)).to_have_attribute("data-points", re.compile(r"^([4-9]|\d\d+)$"))

    later = admin.open("/dashboard/")
    loaded_at = later.evaluate("performance.timeOrigin / 1000")
    # Points from before this page loaded, drawn at once (not one a second from empty).
    expect(chart(later)).to_have_attribute("data-points", re.compile(r"^([4-9]|\d\d+)$"))
    assert float(chart(later).get_attribute("data-from")) < loaded_at - 2
    for name in ("messages", "connections"):
        x_min = float(chart(later, name).get_attribute("data-x-min"))
        x_max = float(chart(later, name).get_attribute("data-x-max"))
        assert x_max - x_min == pytest.approx(300, abs=1)
        assert abs(x_max - loaded_at) < 60

    # The announcement form posts without reloading: the page and its points stay.
    later.evaluate("window.notReloaded = true")
    before = points(later)
    later.get_by_role("textbox", name="Announcement").fill(f"Hello from the dashboard {before}")
    later.get_by_role("button", name="Send announcement").click()
    expect(later.get_by_role("status").filter(has_text="Announcement sent.")).to_be_visible()
    expect(later.get_by_role("textbox", name="Announcement")).to_have_value("")
    assert later.evaluate("window.notReloaded") is True
    assert points(later) >= before
    expect(
        later.locator(".announcement").filter(has_text=f"Hello from the dashboard {before}")
    ).to_have_count(1)
    # An empty announcement is refused in words, still without a reload.
    later.get_by_role("button", name="Send announcement").click()
    expect(later.get_by_role("alert")).to_have_text("This field is required.")
    assert later.evaluate("window.notReloaded") is True


def test_an_empty_chart_shows_the_last_five_minutes_not_years(require_chromium, people):
    admin = people("admin", staff=True)
    page = admin.context.new_page()
    # Note the x axis of each chart's first frame, drawn before any point is known.
    page.add_init_script(
        """new MutationObserver((changes) => {
            for (const change of changes) {
                const area = change.target;
                if (area.dataset && area.dataset.xMax && !area.dataset.firstWindow) {
                    area.dataset.firstWindow =
                        [area.dataset.xMin, area.dataset.xMax, area.dataset.points].join(" ");
                }
            }
        }).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-x-max"]});"""
    )
    page.goto(admin.server.url + "/dashboard/")
    now = page.evaluate("Date.now() / 1000")
    for name in ("messages", "connections"):
        expect(chart(page, name)).to_have_attribute("data-first-window", re.compile(r" 0$"))
        first = chart(page, name).get_attribute("data-first-window").split()
        x_min, x_max = float(first[0]), float(first[1])
        assert x_max - x_min == pytest.approx(300, abs=1), first
        assert abs(x_max - now) < 60, first
