"""
An accessibility audit: axe-core (vendored under tests/browser/vendor/, never
served by the site) runs in Chromium on every kind of page the real server
serves, and no "serious" or "critical" violation may remain.

The site's Content Security Policy forbids inline scripts, so a `<script>` tag
added by the test would be blocked; Playwright's `page.evaluate` runs the
library's source through the DevTools protocol instead, which the policy does
not govern: each page is audited under the same policy its visitors get.

The audit names pages by URL and by the actions a visitor takes (labels and
buttons), not by their markup, so it keeps working as the pages change.
"""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_room

pytestmark = pytest.mark.browser

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
SERIOUS = ("serious", "critical")


def audit(page) -> list[dict]:
    """The page's serious and critical axe violations, with the elements they concern."""
    page.wait_for_load_state("load")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)
    result = page.evaluate(
        """async () => {
            const found = await window.axe.run(document, {resultTypes: ["violations"]});
            return found.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target.join(" "),
                                          summary: n.failureSummary || ""})),
            }));
        }"""
    )
    return [violation for violation in result if violation["impact"] in SERIOUS]


def readable(found: dict[str, list[dict]]) -> str:
    lines = []
    for page_name, violations in found.items():
        for v in violations:
            lines.append(f"\n[{page_name}] {v['impact']}: {v['id']}: {v['help']} ({v['helpUrl']})")
            for node in v["nodes"][:8]:
                summary = " ".join(node["summary"].split())
                lines.append(f"    {node['target']}\n      {summary}")
    return "\n".join(lines)


def test_no_page_has_a_serious_accessibility_violation(
    require_chromium, people, daphne_server, live_database
):
    boss = people("boss", staff=True)
    live_database.shell(
        "from django.contrib.auth import get_user_model as g;"
        f"g().objects.filter(username={boss.username!r}).update(is_superuser=True)"
    )
    bob = people("bob")
    stranger = people("visitor", signed_in=False)
    slug = create_room(bob, private=True)
    for text in ("Hello there", "A second message with @" + boss.username):
        status, _ = bob.session.request("POST", f"/api/rooms/{slug}/messages/", {"text": text})
        assert status == 201
    found: dict[str, list[dict]] = {}

    def check(name: str, page) -> None:
        found[name] = audit(page)
        page.close()

    # Signed out.
    check("sign-in (landing)", stranger.open("/login/"))
    check("sign-up", stranger.open("/signup/"))
    page = stranger.open("/signup/")
    with page.expect_navigation():
        page.get_by_role("button", name="Create account").click()
    check("sign-up with errors", page)
    check("404", stranger.open("/no-such-page/"))

    # Signed in.
    check("rooms list", bob.open("/"))
    page = bob.open("/")
    with page.expect_navigation():
        page.get_by_role("button", name="Create room").click()
    check("create-room form with errors", page)
    page = bob.open(f"/rooms/{slug}/")
    expect(page.get_by_text("Hello there")).to_be_visible()
    check("a room with messages", page)
    check("403", bob.open("/dashboard/"))
    check("API reference", bob.open("/api/docs/"))

    # Staff.
    check("dashboard", boss.open("/dashboard/"))
    check("admin index", boss.open("/admin/"))
    check("admin live connections", boss.open("/admin/realtime/liveconnection/"))
    page = boss.open(f"/admin/realtime/user/?q={bob.username}")
    page.locator("input[name=_selected_action]").first.check()
    page.locator("select[name=action]").select_option("send_notification")
    page.locator("button[name=index], input[name=index]").first.click()
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    check("admin send notification", page)

    if any(found.values()):
        pytest.fail(readable(found), pytrace=False)
