"""Announcements: recent ones shown to pages opened later, until that person dismisses them."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import badge, unique

pytestmark = pytest.mark.browser


def announcement(page, text: str):
    return page.locator(".announcement").filter(has_text=text)


def announce(admin, text: str) -> None:
    status, body = admin.session.request(
        "POST", "/api/publish/", {"topic": "broadcast", "data": {"text": text}}
    )
    assert status == 200, body


def test_an_announcement_made_earlier_is_shown_on_load_and_stays_dismissed(
    require_chromium, people
):
    admin, alice, bob = people("admin", staff=True), people("alice"), people("bob")
    text = f"Maintenance tonight {unique('')}"
    announce(admin, text)

    page = alice.open("/")
    shown = announcement(page, text)
    expect(shown).to_have_count(1)
    expect(shown).to_have_attribute("role", "status")
    expect(badge(page)).to_have_text("Live")
    shown.get_by_role("button", name="Dismiss announcement").click()
    expect(shown).to_have_count(0)

    # Dismissed for alice on the server: gone after a reload and in a new tab.
    page.reload()
    expect(badge(page)).to_have_text("Live")
    expect(announcement(page, text)).to_have_count(0)
    expect(announcement(alice.open("/"), text)).to_have_count(0)
    # Still there for bob, who did not dismiss it.
    expect(announcement(bob.open("/"), text)).to_have_count(1)

    # A newer one comes live to alice's page, after the dismissed one stayed away.
    later = f"Maintenance done {unique('')}"
    announce(admin, later)
    expect(announcement(page, later)).to_have_count(1)
    expect(announcement(page, text)).to_have_count(0)


def test_an_anonymous_visitor_dismisses_in_their_own_browser(require_chromium, people):
    admin, guest = people("admin", staff=True), people("guest", signed_in=False)
    other_guest = people("guest", signed_in=False)
    text = f"Welcome, visitors {unique('')}"
    announce(admin, text)

    page = guest.open("/login/")
    expect(announcement(page, text)).to_have_count(1)
    announcement(page, text).get_by_role("button", name="Dismiss announcement").click()
    expect(announcement(page, text)).to_have_count(0)
    page.reload()
    expect(badge(page)).to_have_text("Live")
    expect(announcement(page, text)).to_have_count(0)
    # Another browser (its own storage) still shows it.
    expect(announcement(other_guest.open("/login/"), text)).to_have_count(1)
