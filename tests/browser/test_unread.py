"""
Unread state: per-room counts on the rooms list and in the tab title, moving
live; reading a room clears them; a notification opens the room at its message
and is read; a mention read in the open room is not left unread.
"""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import badge, create_room, messages, send

pytestmark = pytest.mark.browser


def unread_badge(page, slug: str):
    return page.locator(f'li.room[data-slug="{slug}"] [data-unread-badge]')


def bell_count(page):
    return page.locator("[data-bell-count]")


def post(visitor, slug: str, text: str) -> dict:
    status, body = visitor.session.request("POST", f"/api/rooms/{slug}/messages/", {"text": text})
    assert status == 201, body
    return body


def notifications(visitor) -> dict:
    status, body = visitor.session.request("GET", "/api/notifications/")
    assert status == 200, body
    return body


def expect_title_total(page, visitor, *, ours: int) -> None:
    """
    The tab title shows the user's total unread as the server counts it: this
    test's rooms hold `ours`; rooms other tests left on the shared server may
    add theirs (counted by the server too, so a page that counts wrong fails).
    """
    deadline = time.monotonic() + 15
    while True:
        status, rooms = visitor.session.request("GET", "/api/rooms/")
        assert status == 200
        total = sum(room["unread"] for room in rooms)
        title = f"({total}) Rooms · Realtime" if total else "Rooms · Realtime"
        if page.title() == title or time.monotonic() > deadline:
            break
        page.wait_for_timeout(200)
    assert total >= ours
    assert page.title() == title, (page.title(), title)


def test_unread_counts_move_live_and_reading_the_room_clears_them(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(bob)
    quiet = create_room(bob)
    post(bob, slug, "before alice looked")

    rooms = alice.open("/")
    # Counted on load, by the server: one message of bob's since alice signed up.
    expect(unread_badge(rooms, slug)).to_have_text("1 unread")
    expect(unread_badge(rooms, quiet)).to_be_hidden()
    expect_title_total(rooms, alice, ours=1)
    expect(badge(rooms)).to_have_text("Live")

    # Bob writes from his own browser: alice's list and title follow live.
    bob_room = bob.open(f"/rooms/{slug}/")
    expect(badge(bob_room)).to_have_text("Live")
    send(bob_room, "one")
    send(bob_room, "two")
    expect(unread_badge(rooms, slug)).to_have_text("3 unread")
    expect_title_total(rooms, alice, ours=3)
    post(bob, quiet, "over here")
    expect(unread_badge(rooms, quiet)).to_have_text("1 unread")
    expect_title_total(rooms, alice, ours=4)

    # Bob's own messages are never unread for him.
    bob_rooms = bob.open("/")
    expect(unread_badge(bob_rooms, slug)).to_be_hidden()
    expect_title_total(bob_rooms, bob, ours=0)

    # Alice reads the room in another tab: the list tab follows, then a reload agrees.
    room = alice.open(f"/rooms/{slug}/")
    expect(messages(room)).to_have_count(3)
    expect(unread_badge(rooms, slug)).to_be_hidden()
    expect_title_total(rooms, alice, ours=1)
    rooms.reload()
    expect(unread_badge(rooms, slug)).to_be_hidden()
    expect(unread_badge(rooms, quiet)).to_have_text("1 unread")

    # While the room is open and in view, new messages are read as they come.
    send(bob_room, "three")
    expect(messages(room)).to_have_count(4)
    rooms.reload()
    expect(unread_badge(rooms, quiet)).to_have_text("1 unread")
    expect(unread_badge(rooms, slug)).to_be_hidden()
    expect_title_total(rooms, alice, ours=1)


def test_a_notification_opens_the_room_at_its_message_and_is_read(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(bob)
    for n in range(5):
        post(bob, slug, f"before {n}")
    mention = post(bob, slug, f"look at this @{alice.username}")
    for n in range(30):
        post(bob, slug, f"after {n}")

    page = alice.open("/")
    expect(bell_count(page)).to_have_text("1")
    page.locator("[data-bell] summary").click()
    link = page.locator("[data-bell-list] > li.unread a.note-title")
    expect(link).to_have_attribute("href", f"/rooms/{slug}/#message-{mention['id']}")
    link.click()

    page.wait_for_url(re.compile(rf"/rooms/{slug}/#message-{mention['id']}$"))
    target = page.locator("[data-messages] > li.message-target")
    expect(target).to_have_count(1)
    expect(target.locator(".text")).to_have_text(f"look at this @{alice.username}")
    expect(target).to_be_in_viewport()
    expect(bell_count(page)).to_have_text("0")
    assert notifications(alice)["unread"] == 0


def test_a_mention_read_live_in_the_open_room_is_not_left_unread(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(bob)
    room = alice.open(f"/rooms/{slug}/")
    expect(badge(room)).to_have_text("Live")
    elsewhere = alice.open("/")
    expect(badge(elsewhere)).to_have_text("Live")

    post(bob, slug, f"hey @{alice.username}")
    expect(messages(room)).to_have_count(1)
    # The open room's tab read it: every tab's bell goes back to 0, the server agrees.
    for tab in (room, elsewhere):
        expect(bell_count(tab)).to_have_text("0")
    assert notifications(alice)["unread"] == 0
    assert notifications(alice)["results"][0]["read_at"] is not None


def test_a_new_notification_is_announced_in_a_polite_live_region(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(bob)
    page = alice.open("/")
    expect(badge(page)).to_have_text("Live")
    # The bell's list has loaded: what comes now is new.
    expect(page.locator("[data-bell-list]")).to_have_attribute("aria-busy", "false")
    region = page.locator("[data-bell-live]")
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region).to_have_text("")
    post(bob, slug, f"@{alice.username} ping")
    expect(region).to_have_text(f"New notification: {bob.username} mentioned you in #{slug}")


def test_a_deleted_message_is_not_counted_as_unread(require_chromium, people):
    """The list resumes after the room's latest event, not its newest message:
    a replay would bring back the `message` event of a message deleted since."""
    alice, bob = people("alice"), people("bob")
    slug = create_room(bob)
    post(bob, slug, "kept")
    gone = post(bob, slug, "gone")
    status, _ = bob.session.request("DELETE", f"/api/rooms/{slug}/messages/{gone['id']}/")
    assert status == 204
    rooms = alice.open("/")
    expect(badge(rooms)).to_have_text("Live")
    expect(unread_badge(rooms, slug)).to_have_text("1 unread")
    # Live too: a message counted here and then deleted is no longer unread.
    doomed = post(bob, slug, "soon gone")
    expect(unread_badge(rooms, slug)).to_have_text("2 unread")
    status, _ = bob.session.request("DELETE", f"/api/rooms/{slug}/messages/{doomed['id']}/")
    assert status == 204
    expect(unread_badge(rooms, slug)).to_have_text("1 unread")
