"""The phone layout (390 x 844): the bell's panel on screen, the online list reachable;
on a desktop the chat fills the window's height."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import badge, create_room

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def test_the_bell_panel_opens_inside_a_phone_screen(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(bob)
    status, _ = bob.session.request(
        "POST", f"/api/rooms/{slug}/messages/", {"text": f"@{alice.username} hi"}
    )
    assert status == 201
    for path in ("/", f"/rooms/{slug}/"):
        page = alice.open(path)
        page.set_viewport_size(PHONE)
        expect(page.locator("[data-bell-count]")).to_have_text("1" if path == "/" else "0")
        page.locator("[data-bell] summary").click()
        panel = page.locator(".bell-panel")
        expect(panel).to_be_visible()
        expect(panel.locator("[data-bell-list] > li")).to_have_count(1)
        box = panel.bounding_box()
        assert box is not None
        assert box["x"] >= 0, box
        assert box["x"] + box["width"] <= PHONE["width"], box
        assert box["y"] >= 0, box
        # Its notification can be reached and read on the phone.
        expect(panel.locator("a.note-title")).to_be_in_viewport()


def test_the_online_list_opens_as_a_drawer_on_a_phone(require_chromium, people):
    alice = people("alice")
    slug = create_room(alice)
    page = alice.open(f"/rooms/{slug}/")
    page.set_viewport_size(PHONE)
    expect(badge(page)).to_have_text("Live")
    presence = page.locator("[data-presence]")
    expect(presence).not_to_be_in_viewport()
    # The message box stays on screen under the chat.
    expect(page.get_by_role("textbox", name="Message")).to_be_in_viewport()

    toggle = page.get_by_role("button", name="Online (1)")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(presence.locator("li")).to_have_text(f"{alice.username} (you)")
    expect(presence).to_be_in_viewport()
    # Once it has slid in, the drawer lies wholly on screen.
    page.wait_for_function(
        "() => { const r = document.querySelector('.room-side').getBoundingClientRect();"
        " return r.left >= 0 && r.right <= window.innerWidth; }"
    )
    page.keyboard.press("Escape")
    expect(presence).not_to_be_in_viewport()
    expect(toggle).to_be_focused()


def test_on_a_desktop_the_chat_fills_the_window_height(require_chromium, people):
    alice = people("alice")
    slug = create_room(alice)
    page = alice.open(f"/rooms/{slug}/")  # 1100 x 760
    expect(badge(page)).to_have_text("Live")
    expect(page.get_by_role("button", name="Online", exact=False)).to_be_hidden()
    height = page.viewport_size["height"]
    chat = page.locator(".chat").bounding_box()
    messages = page.locator("[data-messages]").bounding_box()
    form = page.locator("[data-send-form]").bounding_box()
    # The chat card is the window's height but for the header and margins (not a
    # list capped at 60 % of it), the message list takes what the card has left,
    # and the send box sits at the card's bottom.
    assert height - 130 <= chat["height"] <= height, chat
    assert messages["height"] >= chat["height"] * 0.55, (messages, chat)
    assert chat["y"] + chat["height"] - (form["y"] + form["height"]) <= 40, (form, chat)
    # A taller window gives the message list all of the extra height.
    page.set_viewport_size({"width": 1100, "height": height + 200})
    page.wait_for_function(
        f"() => document.querySelector('[data-messages]').getBoundingClientRect().height"
        f" >= {messages['height'] + 190}"
    )
