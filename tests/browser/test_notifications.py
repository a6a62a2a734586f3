"""The notifications bell and site-wide announcements, live on every page and tab."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import badge, create_room

pytestmark = pytest.mark.browser


def bell_count(page):
    return page.locator("[data-bell-count]")


def test_a_mention_rings_the_bell_in_every_tab_and_reading_it_clears_them_all(
    require_chromium, people
):
    alice, bob, admin = people("alice"), people("bob"), people("admin", staff=True)
    slug = create_room(bob)
    tabs = [alice.open("/"), alice.open(f"/rooms/{slug}/")]
    expect(badge(tabs[1])).to_have_text("Live")
    for tab in tabs:
        expect(bell_count(tab)).to_have_text("0")

    status, body = bob.session.request(
        "POST", f"/api/rooms/{slug}/messages/", {"text": f"@{alice.username} look at this"}
    )
    assert status == 201, body
    for tab in tabs:
        expect(bell_count(tab)).to_have_text("1")

    first = tabs[0]
    first.locator("[data-bell] summary").click()
    note = first.locator("[data-bell-list] > li")
    expect(note).to_have_count(1)
    expect(note).to_have_class(re.compile(r"\bunread\b"))
    expect(note.locator(".note-title")).to_have_text(f"{bob.username} mentioned you in #{slug}")
    expect(note.locator(".note-title")).to_have_attribute("href", f"/rooms/{slug}/")
    first.get_by_role("button", name="Mark all as read").click()
    for tab in tabs:
        expect(bell_count(tab)).to_have_text("0")
    tabs[1].locator("[data-bell] summary").click()
    expect(tabs[1].locator("[data-bell-list] > li")).to_have_count(1)
    expect(tabs[1].locator("[data-bell-list] > li.unread")).to_have_count(0)

    # A second one, read from the other tab with its own button.
    status, _ = bob.session.request(
        "POST", f"/api/rooms/{slug}/messages/", {"text": f"and again @{alice.username}"}
    )
    assert status == 201
    for tab in tabs:
        expect(bell_count(tab)).to_have_text("1")
    tabs[1].locator("[data-bell-list] > li.unread").get_by_role("button").click()
    for tab in tabs:
        expect(bell_count(tab)).to_have_text("0")

    # An announcement appears live on every page, and can be dismissed.
    text = "Maintenance at 17:00 <b>today</b>"
    status, body = admin.session.request(
        "POST", "/api/publish/", {"topic": "broadcast", "data": {"text": text}}
    )
    assert status == 200, body
    for tab in tabs:
        expect(tab.locator(".announcement .announcement-text")).to_have_text(text)
    tabs[0].get_by_role("button", name="Dismiss announcement").click()
    expect(tabs[0].locator(".announcement")).to_have_count(0)
    expect(tabs[1].locator(".announcement")).to_have_count(1)


def test_an_announcement_from_the_dashboard_reaches_a_signed_out_visitor(require_chromium, people):
    admin, visitor = people("admin", staff=True), people("guest", signed_in=False)
    login_page = visitor.open("/login/")
    dashboard = admin.open("/dashboard/")
    dashboard.get_by_label("Announcement").fill("Welcome, everyone")
    dashboard.get_by_role("button", name="Send announcement").click()
    expect(dashboard.get_by_role("status").filter(has_text="Announcement sent.")).to_be_visible()
    expect(login_page.locator(".announcement-text")).to_have_text("Welcome, everyone")
