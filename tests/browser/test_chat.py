"""Two people chatting live in a room, with presence, mentions and hostile text."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_room, messages, send

pytestmark = pytest.mark.browser


def test_two_users_chat_live_and_see_each_other_come_and_go(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(alice)
    alice_page = alice.open(f"/rooms/{slug}/")
    expect(alice_page.locator("[data-connection-badge]")).to_have_text("Live")
    bob_page = bob.open(f"/rooms/{slug}/")
    expect(bob_page.locator("[data-connection-badge]")).to_have_text("Live")

    for page in (alice_page, bob_page):
        presence = page.locator("[data-presence] li")
        expect(presence).to_have_count(2)
        expect(presence.filter(has_text=alice.username)).to_have_count(1)
        expect(presence.filter(has_text=bob.username)).to_have_count(1)

    send(alice_page, f"hello @{bob.username}")
    expect(messages(bob_page)).to_have_count(1)
    expect(messages(bob_page).first.locator(".author")).to_have_text(alice.username)
    expect(messages(bob_page).first.locator(".text")).to_have_text(f"hello @{bob.username}")
    # The mention of bob is highlighted for bob, as a <mark> of its own.
    expect(bob_page.locator("[data-messages] mark.mention-me")).to_have_text(f"@{bob.username}")

    send(bob_page, "hi alice")
    for page in (alice_page, bob_page):
        expect(messages(page)).to_have_text([re.compile("hello"), re.compile("hi alice")])
        # Nothing left pending: each sent message was replaced by the stored one.
        expect(page.locator("[data-outbox] > li")).to_have_count(0)
    offsets = messages(alice_page).evaluate_all("items => items.map(i => i.dataset.offset)")
    assert offsets == ["1", "2"]

    bob_page.close()
    presence = alice_page.locator("[data-presence] li")
    expect(presence).to_have_count(1)
    expect(presence).to_have_text(re.compile(alice.username))

    # The history is rendered by the server on the next visit.
    alice_page.reload()
    expect(messages(alice_page)).to_have_count(2)
    expect(alice_page.locator("[data-connection-badge]")).to_have_text("Live")


def test_hostile_text_is_shown_as_text_and_runs_nothing(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(alice)
    dialogs = []
    alice_page = alice.open(f"/rooms/{slug}/")
    alice_page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    expect(alice_page.locator("[data-connection-badge]")).to_have_text("Live")
    bob_page = bob.open(f"/rooms/{slug}/")
    bob_page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    expect(bob_page.locator("[data-connection-badge]")).to_have_text("Live")

    hostile = "<img src=x onerror=alert(1)> <script>alert(2)</script> <b>bold</b>"
    send(bob_page, hostile)
    for page in (alice_page, bob_page):
        expect(messages(page).locator(".text")).to_have_text(hostile)
        injected = page.locator("[data-messages] img, [data-messages] script, [data-messages] b")
        assert injected.count() == 0

    # Server-rendered history: escaped as well.
    alice_page.reload()
    expect(messages(alice_page).locator(".text")).to_have_text(hostile)
    assert alice_page.locator("[data-messages] img, [data-messages] b").count() == 0
    assert dialogs == []
