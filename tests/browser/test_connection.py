"""The connection badge through a server restart and a sign-out in another tab."""

import re

import pytest
from playwright.sync_api import expect

from deploy.client import HttpSession
from tests.browser.conftest import PASSWORD, badge, create_room, messages, send
from tests.live import LiveServer

pytestmark = pytest.mark.browser
SERVER_DOWN = re.compile(r"^(The server is restarting|Can't reach the server)$")


def test_a_page_survives_a_server_restart_without_losing_or_doubling_messages(
    require_chromium, people, live_database
):
    """
    The page's server is stopped (SIGTERM: sockets closed with 4012) and started
    again on the same port. While it is down, bob posts through a second server
    process on the same database (the only honest way to post "during the
    outage"), and alice types a message into the page, which queues it.
    """
    alice, bob = people("alice"), people("bob")
    server = alice.server
    slug = create_room(alice)
    other = LiveServer(live_database).start()
    try:
        bob_elsewhere = HttpSession(other).login(bob.username, PASSWORD)
        page = alice.open(f"/rooms/{slug}/")
        expect(badge(page)).to_have_text("Live")
        send(page, "before the restart")
        expect(messages(page)).to_have_count(1)

        server.stop()
        # The server, not the network: never the offline words.
        expect(badge(page)).to_have_text(SERVER_DOWN)
        for n in (1, 2, 3):
            status, body = bob_elsewhere.request(
                "POST", f"/api/rooms/{slug}/messages/", {"text": f"while down {n}"}
            )
            assert status == 201, body
        send(page, "typed while offline")
        expect(page.locator("[data-outbox] > li.pending")).to_have_text(
            re.compile("typed while offline")
        )
        expect(badge(page)).to_have_text(SERVER_DOWN)  # queued, but not "Offline"

        server.start()  # the same port again
        # Backoff with full jitter: the next try can be several seconds away.
        expect(badge(page)).to_have_text("Live", timeout=40_000)
        expect(messages(page).locator(".text")).to_have_text(
            [
                "before the restart",
                "while down 1",
                "while down 2",
                "while down 3",
                "typed while offline",
            ]
        )
        expect(page.locator("[data-outbox] > li")).to_have_count(0)
        offsets = messages(page).evaluate_all("items => items.map(i => Number(i.dataset.offset))")
        assert offsets == [1, 2, 3, 4, 5]
    finally:
        other.stop()

    # Stored once: the history on the server agrees with the page.
    status, history = alice.session.request("GET", f"/api/rooms/{slug}/messages/")
    assert status == 200
    assert [m["text"] for m in history["results"]] == [
        "before the restart",
        "while down 1",
        "while down 2",
        "while down 3",
        "typed while offline",
    ]


def test_signing_out_in_one_tab_turns_the_other_to_signed_out_for_good(require_chromium, people):
    carol = people("carol", signed_in=False)
    first = carol.sign_in_through_the_page()
    # Create a room through the page's form: the new room's page opens.
    first.get_by_label("Address").fill("signout-" + carol.username[-6:])
    first.get_by_label("Name").fill("Sign-out test")
    first.get_by_role("button", name="Create room").click()
    expect(first.get_by_role("heading", level=1)).to_contain_text("Sign-out test")
    expect(badge(first)).to_have_text("Live")

    second = carol.open(first.url.removeprefix(carol.server.url))
    expect(badge(second)).to_have_text("Live")
    sockets = []
    second.on("websocket", lambda socket: sockets.append(socket.url))

    first.get_by_role("button", name="Sign out").click()
    first.wait_for_url(re.compile(r"/login/"))

    expect(badge(second)).to_have_text("Signed out")
    expect(second.get_by_text("Your session ended.")).to_be_visible()
    # The room's history and send box are replaced by the sign-in prompt.
    expect(second.get_by_role("textbox", name="Message")).to_have_count(0)
    # It stays closed: no new socket is opened (a retry would come within a few seconds).
    second.wait_for_timeout(4_000)
    assert sockets == []
    expect(badge(second)).to_have_text("Signed out")
