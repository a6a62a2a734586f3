"""
What a person sees when the connection fails, and what happens to what they
typed: the one connection status in the header of every page, the send box's
pending and failed messages, the presence card and the sign-in prompt.

Every message test also checks the other side: the other person's page gets
exactly one copy, and the server stored exactly one.
"""

import re
import signal
import time
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    badge,
    connection_status,
    create_room,
    messages,
    outbox,
    send,
)

pytestmark = pytest.mark.browser
OFFLINE = "Offline — messages will be sent when you're back"
UNREACHABLE = "Can't reach the server"
RESTARTING = "The server is restarting"


def texts(page):
    return messages(page).locator(".text")


def received_once(page, text: str) -> None:
    """`text` is on `page` exactly once, and no second copy follows."""
    expect(messages(page).filter(has_text=text)).to_have_count(1)
    page.wait_for_timeout(1_000)
    expect(messages(page).filter(has_text=text)).to_have_count(1)


def stored_once(visitor, slug: str, text: str) -> None:
    status, history = visitor.session.request("GET", f"/api/rooms/{slug}/messages/")
    assert status == 200, history
    assert [m["text"] for m in history["results"]].count(text) == 1, history["results"]


def presence_card(page):
    return page.get_by_role("region", name=re.compile(r"^Online"))


def chatting(people):
    """Alice and bob in alice's room, both pages live."""
    alice, bob = people("alice"), people("bob")
    slug = create_room(alice)
    alice_page, bob_page = alice.open(f"/rooms/{slug}/"), bob.open(f"/rooms/{slug}/")
    for page in (alice_page, bob_page):
        expect(badge(page)).to_have_text("Live")
        expect(page.locator("[data-presence] li")).to_have_count(2)
    return alice, slug, alice_page, bob_page


def record_badge_texts(page) -> None:
    """From now on, `window.badgeTexts` lists every text the status's live region takes."""
    page.evaluate(
        """() => {
          const live = document.querySelector("[data-connection-badge]");
          window.badgeTexts = [];
          new MutationObserver(() => window.badgeTexts.push(live.textContent)).observe(
            live, { childList: true, characterData: true, subtree: true });
        }"""
    )


# ---- 1. a message answered late, and its "Retry" ---------------------------


def test_a_message_the_server_answers_late_shows_as_sent_once_not_failed(require_chromium, people):
    """
    The server hangs (SIGSTOP: the socket stays open, nothing is answered) for
    longer than the publish timeout: the message is marked "Not sent" with a
    Retry. When the server resumes it stores the message and acks late: the
    failure must clear by itself, and the message show once.
    """
    alice, slug, alice_page, bob_page = chatting(people)
    sockets = []
    alice_page.on("websocket", lambda socket: sockets.append(socket.url))
    server = alice.server
    server.signal(signal.SIGSTOP)
    try:
        send(alice_page, "are you there?")
        failed = outbox(alice_page).and_(alice_page.locator(".failed"))
        expect(failed).to_contain_text("Not sent", timeout=20_000)
        expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    finally:
        server.signal(signal.SIGCONT)

    expect(outbox(alice_page)).to_have_count(0)
    expect(texts(alice_page)).to_have_text(["are you there?"])
    received_once(bob_page, "are you there?")
    expect(outbox(alice_page)).to_have_count(0)
    stored_once(alice, slug, "are you there?")
    assert sockets == []  # the late ack came on the same connection: no resend helped


def test_retrying_a_message_that_got_no_answer_never_stores_it_twice(require_chromium, people):
    """
    As above, but the person clicks "Retry" while the server still hangs: the
    retry carries the message's client id, so when the server resumes it stores
    the first send and answers the retry with the same message.
    """
    alice, slug, alice_page, bob_page = chatting(people)
    server = alice.server
    server.signal(signal.SIGSTOP)
    try:
        send(alice_page, "one copy please")
        failed = outbox(alice_page).and_(alice_page.locator(".failed"))
        expect(failed).to_contain_text("Not sent", timeout=20_000)
        failed.get_by_role("button", name="Retry").click()
        expect(outbox(alice_page).and_(alice_page.locator(".pending"))).to_have_count(1)
    finally:
        server.signal(signal.SIGCONT)

    expect(outbox(alice_page)).to_have_count(0)
    received_once(bob_page, "one copy please")
    expect(texts(alice_page)).to_have_text(["one copy please"])
    stored_once(alice, slug, "one copy please")


# ---- 2. the browser goes offline -------------------------------------------


def test_going_offline_is_said_and_what_is_typed_waits_then_goes_out_once(require_chromium, people):
    alice, slug, alice_page, bob_page = chatting(people)
    alice.context.set_offline(True)  # fires `offline`; navigator.onLine is false
    expect(badge(alice_page)).to_have_text(OFFLINE)
    expect(presence_card(alice_page)).to_contain_text("reconnecting…")

    send(alice_page, "typed while offline")
    waiting = outbox(alice_page)
    expect(waiting).to_have_class(re.compile(r"\bpending\b"))
    expect(waiting.locator(".status")).to_have_text("Queued — will be sent when you're back online")
    # Longer than the publish timeout (10 s): it waits in the queue, it does not fail.
    alice_page.wait_for_timeout(11_000)
    expect(waiting).to_have_class(re.compile(r"\bpending\b"))
    expect(alice_page.locator("[data-outbox] > li.failed")).to_have_count(0)
    expect(badge(alice_page)).to_have_text(OFFLINE)

    alice.context.set_offline(False)
    expect(badge(alice_page)).to_have_text("Live")
    expect(outbox(alice_page)).to_have_count(0)
    expect(texts(alice_page)).to_have_text(["typed while offline"])
    received_once(bob_page, "typed while offline")
    stored_once(alice, slug, "typed while offline")


# ---- 3 and 6. the server is down, then back: "Reconnect now" ---------------


def test_a_server_outage_is_not_blamed_on_the_network_and_reconnect_now_is_prompt(
    require_chromium, people
):
    alice, slug, alice_page, bob_page = chatting(people)
    server = alice.server
    record_badge_texts(alice_page)
    # The countdown is outside the live region: screen readers hear the state, not the seconds.
    expect(badge(alice_page)).to_have_attribute("aria-live", "polite")
    assert alice_page.evaluate(
        "document.querySelector('[data-connection-detail]').closest('[aria-live]') === null"
    )

    server.stop()  # sockets closed with 4012, then the port is closed
    status = connection_status(alice_page)
    expect(badge(alice_page)).to_have_text(UNREACHABLE)
    expect(status).to_contain_text(re.compile(r"Can't reach the server\s+— retrying in \d+ s"))
    reconnect = alice_page.get_by_role("button", name="Reconnect now")
    expect(reconnect).to_be_visible()
    expect(presence_card(alice_page)).to_contain_text("reconnecting…")

    send(alice_page, "typed while the server was down")
    waiting = outbox(alice_page)
    expect(waiting).to_have_class(re.compile(r"\bpending\b"))
    expect(waiting.locator(".status")).to_have_text("Queued — will be sent when the server is back")
    # The network is fine: never the offline words, and the words hold still
    # while the countdown runs.
    samples = alice_page.evaluate(
        """async () => {
          const seen = [];
          for (let i = 0; i < 25; i++) {
            seen.push(document.querySelector("[data-connection-badge]").textContent);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          return seen;
        }"""
    )
    assert set(samples) == {UNREACHABLE}, samples

    # The backoff has grown: wait for a try that is several seconds away, so
    # that "Live" can only come from the button.
    detail = alice_page.locator("[data-connection-detail]")
    expect(detail).to_have_text(re.compile(r"retrying in ([6-9]|\d\d) s"), timeout=40_000)
    server.start()  # the same port again
    seconds = int(re.search(r"in (\d+) s", detail.inner_text()).group(1))
    assert seconds >= 3, "the server took too long to start for this test to mean anything"
    clicked = time.monotonic()
    reconnect.click()
    expect(badge(alice_page)).to_have_text("Live", timeout=2_500)
    assert time.monotonic() - clicked < min(seconds - 0.5, 2.5)
    expect(reconnect).to_be_hidden()
    # Bob's page too (in one step: its own try may come first and hide the button).
    bob_page.evaluate(
        """() => {
          const button = document.querySelector("[data-reconnect-now]");
          if (!button.hidden) button.click();
        }"""
    )
    expect(badge(bob_page)).to_have_text("Live", timeout=5_000)

    expect(outbox(alice_page)).to_have_count(0)
    expect(texts(alice_page)).to_have_text(["typed while the server was down"])
    received_once(bob_page, "typed while the server was down")
    stored_once(alice, slug, "typed while the server was down")
    expect(presence_card(alice_page).locator("[data-presence] li")).to_have_count(2)

    # What a screen reader heard: one announcement per state, none per second.
    heard = alice_page.evaluate("window.badgeTexts")
    assert heard[0] == RESTARTING, heard
    assert heard[-1] == "Live", heard
    assert UNREACHABLE in heard, heard
    assert OFFLINE not in heard, heard
    assert len(heard) <= 4, heard


# ---- 4. closes that stay closed, on pages that had no badge ----------------


def connection_ids(staff, user_id: int) -> list[str]:
    status, rows = staff.session.request("GET", "/api/connections/")
    assert status == 200, rows
    return [r["connection_id"] for r in rows if r["user"] and r["user"]["id"] == user_id]


@pytest.mark.parametrize("where", ["rooms list", "room"])
def test_disconnected_by_an_administrator_is_said_in_the_header_with_a_reload(
    require_chromium, people, where
):
    alice, bob, admin = people("alice"), people("bob"), people("admin", staff=True)
    slug = create_room(bob)
    page = alice.open("/" if where == "rooms list" else f"/rooms/{slug}/")
    expect(badge(page)).to_have_text("Live")
    expect(page.locator("[data-bell-count]")).to_have_text("0")

    deadline = time.monotonic() + 5
    while not (ids := connection_ids(admin, alice.session.user_id)):
        assert time.monotonic() < deadline, "alice's connection is not listed"
        time.sleep(0.1)
    assert len(ids) == 1, ids
    status, body = admin.session.request("DELETE", f"/api/connections/{ids[0]}/")
    assert status == 204, body

    expect(badge(page)).to_have_text("Disconnected by an administrator")
    expect(connection_status(page).get_by_role("button", name="Reload")).to_be_visible()
    expect(page.get_by_role("button", name="Reconnect now")).to_be_hidden()

    # A mention made now cannot arrive on a closed connection: Reload brings it. (In
    # another room: one in the room being read would be read at once.)
    elsewhere = create_room(bob)
    status, body = bob.session.request(
        "POST", f"/api/rooms/{elsewhere}/messages/", {"text": f"@{alice.username} are you there?"}
    )
    assert status == 201, body
    connection_status(page).get_by_role("button", name="Reload").click()
    expect(badge(page)).to_have_text("Live")
    expect(page.locator("[data-bell-count]")).to_have_text("1")


# ---- 5. signed out in another tab ------------------------------------------


@pytest.mark.parametrize("where", ["room", "rooms list", "dashboard"])
def test_signing_out_in_another_tab_replaces_private_content_with_a_sign_in_prompt(
    require_chromium, people, where
):
    carol, bob = people("carol", staff=where == "dashboard"), people("bob")
    private = create_room(carol, private=True, name="Carol secret plans")
    status, body = carol.session.request(
        "POST", f"/api/rooms/{private}/messages/", {"text": "the launch is on friday"}
    )
    assert status == 201, body
    public = create_room(bob)
    status, body = bob.session.request(
        "POST", f"/api/rooms/{public}/messages/", {"text": f"@{carol.username} lunch?"}
    )
    assert status == 201, body

    path = {"room": f"/rooms/{private}/", "rooms list": "/", "dashboard": "/dashboard/"}[where]
    page = carol.open(path)
    expect(badge(page)).to_have_text("Live")
    expect(page.locator("[data-bell-count]")).to_have_text("1")
    expect(page.locator(".site-header")).to_contain_text(carol.username)
    private_text = {
        "room": "the launch is on friday",
        "rooms list": "Carol secret plans",
        "dashboard": "Announce to everyone",
    }[where]
    expect(page.get_by_text(private_text)).to_be_visible()

    other = carol.open("/")
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_url(re.compile(r"/login/"))

    expect(badge(page)).to_have_text("Signed out")
    prompt = page.get_by_role("link", name="Sign in again")
    expect(prompt).to_be_visible()
    expect(prompt).to_have_attribute("href", "/login/?next=" + quote(path))
    expect(page.get_by_text(private_text)).to_have_count(0)
    expect(page.locator("[data-bell]")).to_have_count(0)
    expect(page.locator(".site-header")).not_to_contain_text(carol.username)
    expect(page.get_by_role("button", name="Reconnect now")).to_be_hidden()
    html = page.content()
    for secret in (private_text, carol.username, "mentioned you", "lunch?"):
        assert secret not in html, secret
    if where == "room":
        expect(page.get_by_role("textbox", name="Message")).to_have_count(0)
        expect(page.get_by_role("heading", name="Members")).to_have_count(0)

    prompt.click()
    page.wait_for_url(re.compile(r"/login/\?next="))
    expect(page.get_by_label("Username")).to_be_visible()
