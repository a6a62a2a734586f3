"""The notifications bell and site-wide announcements, live on every page and tab."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import badge, create_room, unique

pytestmark = pytest.mark.browser


def bell_count(page):
    return page.locator("[data-bell-count]")


def announcement(page, text: str):
    return page.locator(".announcement").filter(has_text=text)


def test_a_mention_rings_the_bell_in_every_tab_and_reading_it_clears_them_all(
    require_chromium, people
):
    alice, bob, admin = people("alice"), people("bob"), people("admin", staff=True)
    slug, other = create_room(bob), create_room(bob)
    # The second tab is another room: a mention in the room in view would be read at once.
    tabs = [alice.open("/"), alice.open(f"/rooms/{other}/")]
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
    expect(note.locator(".note-title")).to_have_attribute(
        "href", re.compile(rf"^/rooms/{slug}/#message-\d+$")
    )
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

    # An announcement appears live on every page, and can be dismissed. (Recent ones
    # made by other tests are shown too: look at this one.)
    text = f"Maintenance at 17:00 <b>today</b> {unique('')}"
    status, body = admin.session.request(
        "POST", "/api/publish/", {"topic": "broadcast", "data": {"text": text}}
    )
    assert status == 200, body
    for tab in tabs:
        expect(announcement(tab, text).locator(".announcement-text")).to_have_text(text)
    announcement(tabs[0], text).get_by_role("button", name="Dismiss announcement").click()
    expect(announcement(tabs[0], text)).to_have_count(0)
    expect(announcement(tabs[1], text)).to_have_count(1)


def test_an_announcement_from_the_dashboard_reaches_a_signed_out_visitor(require_chromium, people):
    admin, visitor = people("admin", staff=True), people("guest", signed_in=False)
    login_page = visitor.open("/login/")
    dashboard = admin.open("/dashboard/")
    text = f"Welcome, everyone {unique('')}"
    dashboard.get_by_role("textbox", name="Announcement").fill(text)
    dashboard.get_by_role("button", name="Send announcement").click()
    expect(dashboard.get_by_role("status").filter(has_text="Announcement sent.")).to_be_visible()
    expect(announcement(login_page, text)).to_have_count(1)
