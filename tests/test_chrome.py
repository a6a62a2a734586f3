"""
The site's chrome (issue 14): forms that show every problem at once in plain
words, the signed-out landing page, the admin's own pages in Django's look, the
API reference rendered from Markdown, `/api/`, the favicon, and the
development log.
"""

import logging
import re
import sys
import uuid

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from realtime.chat.api.markup import markdown_html
from realtime.gateway.logs import ClientErrorFilter
from realtime.gateway.registry import get_registry, new_entry
from realtime.models import Room, RoomMembership
from tests.factories import StaffFactory, UserFactory
from tests.live import LiveServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(db):
    return StaffFactory(username="boss", is_superuser=True)


@pytest.fixture
def admin_client_(boss):
    client = Client()
    client.force_login(boss)
    return client


def text_of(html: str) -> str:
    """The page's words: tags, scripts and `<code>` blocks left out."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# Forms -----------------------------------------------------------------------


def test_creating_a_room_shows_every_problem_at_once_in_plain_words(client, user, room):
    client.force_login(user)
    response = client.post("/", {"slug": "Bad Slug!", "name": ""})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"name", "slug"}  # the slug's problem shows without a name
    html = response.content.decode()
    assert "Give the room a name." in html
    assert "lowercase letters, digits or hyphens" in html
    assert not Room.objects.filter(name="").exists()


def test_a_taken_address_is_said_in_plain_words(client, user, room):
    client.force_login(user)
    response = client.post("/", {"slug": "general", "name": "Another"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "A room with this address already exists." in html
    assert "Room with this Slug" not in html


def test_the_create_room_form_asks_for_the_name_first_with_plain_labels(client, user):
    client.force_login(user)
    html = client.get("/").content.decode()
    labels = re.findall(r'<label for="id_(\w+)"[^>]*>([^<]*)</label>', html)
    assert [name for name, _ in labels][:3] == ["name", "slug", "is_private"]
    words = [label for _, label in labels]
    assert all(not label.rstrip().endswith(":") for label in words), words
    assert "Slug" not in words and "Address" in words


def test_the_sign_in_page_says_what_the_site_is_and_how_to_join(client):
    html = client.get("/login/").content.decode()
    words = text_of(html)
    assert "chat rooms" in words
    assert 'href="/signup/"' in html
    assert 'name="username"' in html and 'name="password"' in html
    assert not re.search(r"<label[^>]*>[^<]*:\s*</label>", html)


def test_the_signup_form_has_plain_labels(client):
    html = client.get("/signup/").content.decode()
    assert not re.search(r"<label[^>]*>[^<]*:\s*</label>", html)


def test_the_add_member_form_shows_on_private_rooms_only(client, user, room, private_room):
    client.force_login(user)
    assert 'action="/rooms/secret/members/"' in client.get("/rooms/secret/").content.decode()
    assert 'action="/rooms/general/members/"' not in client.get("/rooms/general/").content.decode()


# /api/, the favicon ----------------------------------------------------------


def test_api_root_leads_to_the_reference(client):
    response = client.get("/api/")
    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"
    assert client.get("/api/", follow=True).status_code == 200


def test_the_favicon_is_linked_from_every_page_and_served_at_favicon_ico(client, user):
    for path in ("/login/", "/signup/", "/api/docs/"):
        html = client.get(path).content.decode()
        assert re.search(r'<link rel="icon" href="/static/[^"]*favicon[^"]*\.svg"', html), path
    client.force_login(user)
    assert '<link rel="icon"' in client.get("/").content.decode()
    client.force_login(StaffFactory(is_superuser=True))
    assert '<link rel="icon"' in client.get("/admin/").content.decode()
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert re.fullmatch(r"/static/realtime/favicon(\.\w+)?\.svg", response["Location"])


# The API reference -----------------------------------------------------------


def test_the_api_reference_renders_markdown_and_links_only_within_the_site(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "`" not in html  # every `code` span is rendered
    assert html.count("<code>") > 20
    assert "PROTOCOL.md" not in html and ".py" not in text_of(html)
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith(("/", "#")) and not href.startswith("//"), href


def test_markdown_is_escaped_and_keeps_only_links_within_the_site():
    html = markdown_html(
        "Use `<slug>` **now** and *then* (see PROTOCOL.md, section REST).\n\n"
        "- [rooms](/rooms/) and [elsewhere](https://example.com/)\n"
        "- <script>alert(1)</script> [trick](//evil.example/)"
    )
    assert html == (
        "<p>Use <code>&lt;slug&gt;</code> <strong>now</strong> and <em>then</em>.</p>"
        '<ul><li><a href="/rooms/">rooms</a> and elsewhere</li>'
        "<li>&lt;script&gt;alert(1)&lt;/script&gt; trick</li></ul>"
    )


# The admin -------------------------------------------------------------------


BREADCRUMBS = re.compile(r'<nav aria-label="Breadcrumbs">\s*<ol class="breadcrumbs">', re.S)


def test_the_live_connections_page_has_django_breadcrumbs_and_local_times(admin_client_, user):
    registry = get_registry()
    entry = new_entry(
        connection_id=f"c-{uuid.uuid4().hex}",
        user_id=user.pk,
        username=user.username,
        connected_since="2026-03-04T05:06:07.123456+00:00",
        client_address="127.0.0.1:5555",
        user_agent="test",
    )
    async_to_sync(registry.register)(entry)
    try:
        response = admin_client_.get("/admin/realtime/liveconnection/")
    finally:
        async_to_sync(registry.unregister)(entry["connection_id"])
    assert response.status_code == 200
    html = response.content.decode()
    assert BREADCRUMBS.search(html)
    assert '<div class="breadcrumbs">' not in html
    assert entry["connection_id"] in html
    assert "2026-03-04T05:06" not in text_of(html)  # not the raw ISO text
    assert "March 4, 2026" in html
    assert 'datetime="2026-03-04T05:06:07.123456+00:00"' in html


def test_the_send_notification_page_uses_the_admin_look(admin_client_):
    alice = UserFactory(username="alice")
    response = admin_client_.post(
        "/admin/realtime/user/",
        {"action": "send_notification", "_selected_action": [alice.pk]},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert BREADCRUMBS.search(html)
    assert '<div class="breadcrumbs">' not in html
    assert "admin/css/forms.css" in html
    assert 'class="form-row field-title"' in html  # Django's own fieldset markup
    assert "user:&lt;id&gt;" not in html and "topic" not in text_of(html)
    refused = admin_client_.post(
        "/admin/realtime/user/",
        {"action": "send_notification", "_selected_action": [alice.pk], "apply": "1"},
    )
    assert 'class="errornote"' in refused.content.decode()


def test_room_members_read_as_people_in_the_admin(admin_client_, user, room):
    membership = RoomMembership.objects.get(room=room, user=user)
    assert str(membership) == f"{user.username} in #general"
    html = admin_client_.get(f"/admin/realtime/room/{room.pk}/change/").content.decode()
    assert "Room_members object" not in html
    assert f"{user.username} in #general" in html


# The development log ---------------------------------------------------------


def test_client_errors_keep_their_line_and_lose_the_traceback_server_errors_keep_it():
    try:
        raise PermissionError("no")
    except PermissionError:
        exc_info = sys.exc_info()
    records = {}
    for status in (403, 500):
        record = logging.LogRecord("django.request", 30, __file__, 1, "x", (), exc_info)
        record.status_code = status
        assert ClientErrorFilter().filter(record)
        records[status] = record
    assert records[403].exc_info is None
    assert records[500].exc_info is not None


def test_the_development_log_says_each_404_once_and_a_403_without_a_traceback(live_database):
    from deploy.client import HttpSession

    server = LiveServer(live_database, DJANGO_DEBUG="1").start()
    try:
        session = HttpSession(server).signup(f"log{uuid.uuid4().hex[:6]}", "a-long-pass-phrase")
        assert session.request("GET", "/no-such-page/")[0] == 404
        assert session.request("GET", "/dashboard/")[0] == 403
    finally:
        server.stop()
    log = server.log.read_text()
    assert len([line for line in log.splitlines() if "/no-such-page/" in line]) == 1, log
    assert len([line for line in log.splitlines() if "/dashboard/" in line]) == 1, log
    assert "Traceback" not in log, log
