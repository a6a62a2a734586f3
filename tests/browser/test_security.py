"""
Cross-site WebSocket hijacking, tried in Chromium: a page of another app on
the same host but another port, visited by a signed-in user, must not open a
socket as that user (the browser sends the site's cookie: cookies ignore ports).
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.live import free_port

FOREIGN_PAGE = """<!doctype html><title>another app</title><script>
const socket = new WebSocket("ws://127.0.0.1:{port}/ws/");
window.outcome = null;
socket.onmessage = (event) => {{ window.outcome = "opened: " + event.data; }};
socket.onclose = (event) => {{ window.outcome = window.outcome || "refused " + event.code; }};
</script>"""


def serve_foreign_page(app_port: int) -> tuple[ThreadingHTTPServer, int]:
    page = FOREIGN_PAGE.format(port=app_port).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def test_a_page_on_another_port_cannot_open_a_socket_as_the_signed_in_user(people):
    alice = people("alice")
    foreign, port = serve_foreign_page(alice.server.port)
    try:
        page = alice.context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("window.outcome !== null")
        outcome = page.evaluate("window.outcome")
        assert outcome.startswith("refused"), outcome
        page.close()
    finally:
        foreign.shutdown()


def test_a_tab_over_the_connection_cap_says_why(browser, live_database):
    from playwright.sync_api import expect

    from deploy.client import HttpSession
    from tests.browser.conftest import PASSWORD, Visitor, badge, create_room, unique
    from tests.live import LiveServer

    server = LiveServer(live_database, REALTIME_MAX_CONNECTIONS_PER_USER="1").start()
    try:
        name = unique("capped")
        session = HttpSession(server).signup(name, PASSWORD)
        visitor = Visitor(server, browser, session)
        slug = create_room(visitor)
        first = visitor.open(f"/rooms/{slug}/")
        expect(badge(first)).to_have_text("Live")
        second = visitor.open(f"/rooms/{slug}/")
        expect(badge(second)).to_contain_text("Too many open connections")
        expect(badge(first)).to_have_text("Live")
        visitor.context.close()
    finally:
        server.stop()
