"""
The room's messages in two browsers: edits and deletions live and after a
reload, typing, older messages on scrolling up with day separators, the
"new messages below" marker, links and code, mention autocomplete and the
2,000-character limit said in words.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_room, messages, outbox, send

pytestmark = pytest.mark.browser


def live(page):
    expect(page.locator("[data-connection-badge]")).to_have_text("Live")


def message_with(page, text):
    return messages(page).filter(has_text=text)


def seed_history(live_database, slug: str, username: str, count: int) -> None:
    """`count` messages by `username` in `slug`, one every 40 minutes up to now (several days)."""
    code = (
        "from datetime import timedelta;"
        "from django.utils import timezone;"
        "from realtime.chat import services;"
        "from realtime.models import Message, Room, User;"
        f"room = Room.objects.get(slug={slug!r}); author = User.objects.get(username={username!r});"
        f"[services.message_create(room=room, author=author, text=f'old message {{n}}') "
        f"for n in range(1, {count + 1})];"
        "now = timezone.now();"
        "[Message.objects.filter(pk=m.pk).update("
        f"created_at=now - timedelta(minutes=40 * ({count} - m.offset) + 1)) "
        "for m in Message.objects.filter(room=room)]"
    )
    live_database.manage("shell", "-c", code)


def test_edits_and_deletions_are_seen_live_and_after_a_reload(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(alice)
    alice_page, bob_page = alice.open(f"/rooms/{slug}/"), bob.open(f"/rooms/{slug}/")
    live(alice_page)
    live(bob_page)
    send(alice_page, "helo wrold")
    send(alice_page, "this one goes")
    send(bob_page, "bob was here")
    for page in (alice_page, bob_page):
        expect(messages(page)).to_have_count(3)

    # Bob may neither edit nor delete alice's messages; he may edit his own.
    theirs = message_with(bob_page, "helo wrold")
    expect(theirs.get_by_role("button")).to_have_count(0)
    expect(message_with(bob_page, "bob was here").get_by_role("button", name="Edit")).to_have_count(
        1
    )

    # Alice edits with the keyboard: Edit, the new text, Enter.
    message_with(alice_page, "helo wrold").get_by_role("button", name="Edit").click()
    editor = alice_page.get_by_role("textbox", name="Edit message")
    expect(editor).to_be_focused()
    editor.fill("hello world")
    editor.press("Enter")
    for page in (alice_page, bob_page):
        edited = message_with(page, "hello world")
        expect(edited.locator(".text")).to_have_text("hello world")
        expect(edited.locator(".edited")).to_have_text("(edited)")

    # Alice deletes her own message, then bob's (she owns the room).
    message_with(alice_page, "this one goes").get_by_role("button", name="Delete").click()
    alice_page.get_by_role("button", name="Yes, delete").click()
    message_with(alice_page, "bob was here").get_by_role("button", name="Delete").click()
    alice_page.get_by_role("button", name="Yes, delete").click()
    for page in (alice_page, bob_page):
        expect(page.locator("[data-messages] > li.deleted .text")).to_have_text(
            ["message deleted", "message deleted"]
        )
        expect(page.get_by_text("this one goes")).to_have_count(0)
        expect(page.get_by_text("bob was here")).to_have_count(0)

    for page in (alice_page, bob_page):
        page.reload()
        live(page)
        expect(messages(page)).to_have_count(1)
        expect(messages(page).locator(".text")).to_have_text("hello world")
        expect(messages(page).locator(".edited")).to_have_text("(edited)")


def test_typing_is_shown_to_the_other_person_and_fades(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(alice)
    alice_page, bob_page = alice.open(f"/rooms/{slug}/"), bob.open(f"/rooms/{slug}/")
    live(alice_page)
    live(bob_page)
    expect(alice_page.locator("[data-presence] li")).to_have_count(2)
    bob_page.get_by_role("textbox", name="Message").press_sequentially("hel", delay=50)
    expect(alice_page.locator("[data-typing]")).to_have_text(f"{bob.username} is typing…")
    expect(bob_page.locator("[data-typing]")).to_have_text("")  # not told about oneself
    # Gone about 5 s after the last sign of typing.
    expect(alice_page.locator("[data-typing]")).to_have_text("", timeout=9_000)
    # A message from bob ends it at once.
    bob_page.get_by_role("textbox", name="Message").press_sequentially("lo", delay=50)
    expect(alice_page.locator("[data-typing]")).to_have_text(f"{bob.username} is typing…")
    bob_page.get_by_role("textbox", name="Message").press("Enter")
    expect(messages(alice_page)).to_have_count(1)
    expect(alice_page.locator("[data-typing]")).to_have_text("", timeout=1_000)


def test_scrolling_up_loads_all_older_messages_with_days_and_dates(
    require_chromium, people, live_database
):
    alice = people("alice")
    slug = create_room(alice)
    seed_history(live_database, slug, alice.username, 230)
    page = alice.open(f"/rooms/{slug}/")
    live(page)
    expect(messages(page)).to_have_count(50)
    listing = page.locator("[data-messages]")
    for expected in (100, 150, 200, 230):
        # The reader's place is kept: the message at the top stays in view.
        top = messages(page).first
        top_offset = top.get_attribute("data-offset")
        listing.evaluate("list => { list.scrollTop = 0; }")
        expect(messages(page)).to_have_count(expected)
        anchor = page.locator(f'[data-messages] > li[data-offset="{top_offset}"]')
        expect(anchor).to_be_in_viewport()
        assert listing.evaluate("list => list.scrollTop") > 0
    offsets = messages(page).evaluate_all("items => items.map(i => Number(i.dataset.offset))")
    assert offsets == list(range(1, 231))  # all, in order, none twice
    expect(page.get_by_text("This is the start of the room.")).to_be_visible()

    separators = page.locator("[data-messages] > li.day-separator")
    labels = separators.all_inner_texts()
    assert len(labels) >= 5 and labels[-1] == "Today" and labels[-2] == "Yesterday"
    assert re.search(r"\d{4}", labels[0])  # a full date
    assert len(set(labels)) == len(labels)
    # Times of other days carry their date; every time has its full date and time on hover.
    first_time = messages(page).first.locator("time")
    assert re.search(r"[A-Za-z]", first_time.inner_text())
    assert re.search(r"\d{4}", first_time.get_attribute("title"))
    last_time = messages(page).last.locator("time")
    assert re.fullmatch(r"\d{1,2}:\d{2}( ?[AP]M)?", last_time.inner_text())


def test_new_messages_below_when_scrolled_up(require_chromium, people, live_database):
    alice, bob = people("alice"), people("bob")
    slug = create_room(alice)
    seed_history(live_database, slug, alice.username, 60)
    page = alice.open(f"/rooms/{slug}/")
    live(page)
    marker = page.locator("[data-new-below]")
    expect(marker).to_be_hidden()
    listing = page.locator("[data-messages]")
    listing.evaluate("list => { list.scrollTop = list.scrollHeight / 3; }")
    status, body = bob.session.request(
        "POST", f"/api/rooms/{slug}/messages/", {"text": "are you there?"}
    )
    assert status == 201, body
    expect(marker).to_have_text("1 new message below ↓")
    expect(message_with(page, "are you there?")).not_to_be_in_viewport()
    marker.click()
    expect(marker).to_be_hidden()
    expect(message_with(page, "are you there?")).to_be_in_viewport()
    # At the bottom, new messages simply show.
    bob.session.request("POST", f"/api/rooms/{slug}/messages/", {"text": "hello again"})
    expect(message_with(page, "hello again")).to_be_in_viewport()
    expect(marker).to_be_hidden()


def test_links_and_code_are_rendered_and_javascript_urls_are_not(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(alice)
    alice_page, bob_page = alice.open(f"/rooms/{slug}/"), bob.open(f"/rooms/{slug}/")
    live(alice_page)
    live(bob_page)
    text = "see https://example.com/docs?a=1. not javascript:alert(1) but `rm -rf /` ok"
    send(bob_page, text)
    expect(messages(bob_page)).to_have_count(1)
    bob_page.reload()  # rendered by the server, then by room.js: the same
    for page in (alice_page, bob_page):
        live(page)
        body = messages(page).first.locator(".text")
        expect(body).to_have_text(text.replace("`", ""))
        expect(body).to_have_attribute("dir", "auto")
        link = body.locator("a")
        expect(link).to_have_count(1)
        expect(link).to_have_attribute("href", "https://example.com/docs?a=1")
        expect(link).to_have_attribute("rel", re.compile("noopener noreferrer"))
        expect(body.locator("code")).to_have_text("rm -rf /")
        expect(page.locator('[data-messages] a[href^="javascript"]')).to_have_count(0)


def test_mention_autocomplete_offers_people_of_the_room(require_chromium, people):
    alice, bob = people("alice"), people("bob")
    slug = create_room(alice)
    bob_page = bob.open(f"/rooms/{slug}/")
    live(bob_page)
    send(bob_page, "hi")
    alice_page = alice.open(f"/rooms/{slug}/")
    live(alice_page)
    box = alice_page.get_by_role("textbox", name="Message")
    box.press_sequentially(f"thanks @{bob.username[:4]}", delay=20)
    options = alice_page.get_by_role("option")
    expect(options).to_have_text([f"@{bob.username}"])
    box.press("Enter")  # picks the option, does not send
    expect(box).to_have_value(f"thanks @{bob.username} ")
    expect(options).to_have_count(0)
    box.press_sequentially("and @nobody-at-all", delay=10)
    expect(options).to_have_count(0)
    box.press("Enter")
    for page in (alice_page, bob_page):
        marks = message_with(page, "thanks").locator("mark.mention")
        expect(marks).to_have_text([f"@{bob.username}"])  # @nobody-at-all is no user
    expect(bob_page.locator("mark.mention-me")).to_have_text(f"@{bob.username}")


def test_a_text_over_2000_characters_is_refused_in_words_not_cut(require_chromium, people):
    alice = people("alice")
    slug = create_room(alice)
    page = alice.open(f"/rooms/{slug}/")
    live(page)
    box = page.get_by_role("textbox", name="Message")
    box.fill("x" * 2100)
    counter = page.locator("[data-send-counter]")
    expect(counter).to_contain_text("Too long to send: 2,100 characters, the limit is 2,000")
    box.press("Enter")
    expect(box).to_have_value("x" * 2100)  # kept, not truncated, not sent
    expect(outbox(page)).to_have_count(0)
    expect(messages(page)).to_have_count(0)
    box.fill("x" * 1990)
    expect(counter).to_have_text("1,990 / 2,000 characters")
    box.press("Enter")
    expect(messages(page)).to_have_count(1)
    assert len(messages(page).locator(".text").inner_text()) == 1990


CONTRAST = """
item => {
  const rgb = (css) => css.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b]
      .map((v) => v / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const status = item.querySelector(".status");
  let opacity = 1;
  for (let node = status; node; node = node.parentElement) {
    opacity *= Number(getComputedStyle(node).opacity);
  }
  const a = lum(rgb(getComputedStyle(status).color));
  const b = lum(rgb(getComputedStyle(item).backgroundColor));
  return {opacity, ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)};
}
"""


def test_the_pending_text_meets_wcag_aa_contrast(require_chromium, people):
    alice = people("alice")
    slug = create_room(alice)
    page = alice.open(f"/rooms/{slug}/")
    live(page)
    alice.context.set_offline(True)
    send(page, "waiting for the network")
    pending = outbox(page).first
    expect(pending.locator(".status")).to_have_text(re.compile("Queued"))
    measured = pending.evaluate(CONTRAST)
    assert measured["opacity"] == 1
    assert measured["ratio"] >= 4.5, measured
    alice.context.set_offline(False)
    expect(messages(page)).to_have_count(1)
