"""
The README's screenshots, docs/room.png and docs/dashboard.png, taken from a
real server: `SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_screenshots.py`.
Skipped otherwise (they rewrite files in the repository).
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import badge, create_room, messages, send

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.environ.get("SCREENSHOTS") != "1", reason="set SCREENSHOTS=1"),
]
DOCS = Path(__file__).resolve().parent.parent.parent / "docs"


def test_take_the_room_and_dashboard_screenshots(require_chromium, people):
    # Names a person would recognise (this test runs alone, with SCREENSHOTS=1).
    alice = people("maria", exact=True)
    bob = people("tomas", exact=True)
    admin = people("priya", staff=True, exact=True)
    slug = create_room(alice, name="Release planning", slug="release-planning")
    alice_page = alice.open(f"/rooms/{slug}/")
    bob_page = bob.open(f"/rooms/{slug}/")
    expect(alice_page.locator("[data-presence] li")).to_have_count(2)
    script = [
        (alice_page, "Morning! Is the release still on for today?"),
        (bob_page, f"Yes, @{alice.username}: tagging it after lunch."),
        (alice_page, "Great. I'll keep an eye on the dashboard while it rolls out."),
        (bob_page, "Checklist:\n1. migrate\n2. restart the servers\n3. watch the graphs"),
        (alice_page, f"Thanks @{bob.username}, looks good to me."),
    ]
    for n, (page, text) in enumerate(script, start=1):
        send(page, text)
        expect(messages(alice_page)).to_have_count(n)
    status, _ = admin.session.request(
        "POST",
        "/api/publish/",
        {"topic": "broadcast", "data": {"text": "Release 2.4 goes out at 14:00 UTC."}},
    )
    assert status == 200
    expect(bob_page.locator(".announcement").filter(has_text="Release 2.4")).to_have_count(1)
    expect(badge(bob_page)).to_have_text("Live")
    # Alice's mention of bob came into the room bob is reading: it is read already.
    expect(bob_page.locator("[data-bell-count]")).to_have_text("0")
    bob_page.get_by_role("textbox", name="Message").fill("On it")
    bob_page.screenshot(path=str(DOCS / "room.png"))

    dashboard = admin.open("/dashboard/")
    expect(badge(dashboard)).to_have_text("Live")
    chatter = ["deploying web-1", "web-1 healthy", "deploying web-2", "web-2 healthy", "all green"]
    for n in range(40):
        text = chatter[n % len(chatter)]
        status, _ = bob.session.request("POST", f"/api/rooms/{slug}/messages/", {"text": text})
        assert status == 201
        dashboard.wait_for_timeout(150)  # a steady trickle, so the chart has a shape
    dashboard.wait_for_timeout(3_000)
    dashboard.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)
