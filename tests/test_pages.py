"""The site's pages with Django's test client: rooms, a room, members, the dashboard."""

import json
import re

import pytest
from django.test import Client

from realtime.chat import services
from realtime.models import Room
from tests.factories import RoomFactory, UserFactory
from tests.test_auth_pages import assert_no_inline_code

pytestmark = pytest.mark.django_db


def json_script(html: str, element_id: str):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html)
    assert match, element_id
    return json.loads(match.group(1))


def test_the_room_page_needs_a_signed_in_user(client, room):
    response = client.get("/rooms/general/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/rooms/general/"


def test_a_private_room_is_a_404_for_outsiders_like_a_missing_room(
    client, other_user, private_room
):
    client.force_login(other_user)
    hidden = client.get("/rooms/secret/")
    missing = client.get("/rooms/no-such-room/")
    assert hidden.status_code == missing.status_code == 404
    assert "secret" not in hidden.content.decode()


def test_members_and_staff_see_a_private_room(client, user, staff, private_room):
    client.force_login(user)
    assert client.get("/rooms/secret/").status_code == 200
    client.force_login(staff)
    assert client.get("/rooms/secret/").status_code == 200


def test_the_room_page_renders_recent_history_and_the_offset_to_go_live_from(client, user, room):
    for n in range(55):
        services.message_create(room=room, author=user, text=f"message {n}")
    client.force_login(user)
    response = client.get("/rooms/general/")
    assert response.status_code == 200
    html = response.content.decode()
    offsets = [int(o) for o in re.findall(r'data-offset="(\d+)"', html)]
    assert offsets == list(range(6, 56))  # the last 50, oldest first
    data = json_script(html, "room-data")
    assert data["topic"] == "room:general"
    assert data["last_offset"] == 55
    assert data["me"] == {"id": user.pk, "username": user.username}
    assert json_script(html, "realtime-user-id") == user.pk
    assert 'aria-live="polite"' in html
    assert "/static/realtime/room.js" in html
    assert_no_inline_code(html)


def test_an_empty_room_goes_live_from_offset_zero(client, user, room):
    client.force_login(user)
    html = client.get("/rooms/general/").content.decode()
    assert json_script(html, "room-data")["last_offset"] == 0
    assert "No messages yet" in html


def test_history_is_escaped_and_mentions_are_marked(client, user, other_user, room):
    services.message_create(
        room=room,
        author=other_user,
        text=f'<img src=x onerror=alert(1)> hi @{user.username}, "quoted" & @nobody.',
    )
    client.force_login(user)
    html = client.get("/rooms/general/").content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert f'<mark class="mention mention-me">@{user.username}</mark>' in html
    # Only users that exist are marked: "@nobody" is plain text.
    assert "<mark" not in html.split("@nobody")[0].rsplit("</mark>", 1)[-1]
    assert '<mark class="mention">@nobody</mark>' not in html
    assert "&amp; @nobody." in html
    assert "&quot;quoted&quot; &amp;" in html


def test_a_room_name_is_escaped_everywhere(client, user):
    RoomFactory(slug="evil", name="<script>alert(1)</script>", owner=user)
    client.force_login(user)
    for path in ("/", "/rooms/evil/"):
        html = client.get(path).content.decode()
        assert "<script>alert(1)" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_room_list_links_to_rooms_and_creates_one(client, user, room):
    client.force_login(user)
    html = client.get("/").content.decode()
    assert 'href="/rooms/general/"' in html
    response = client.post("/", {"slug": "new-room", "name": "New room", "is_private": "on"})
    assert response.status_code == 302
    assert response["Location"] == "/rooms/new-room/"
    created = Room.objects.get(slug="new-room")
    assert created.is_private and created.owner == user
    assert list(created.members.all()) == [user]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"slug": "general", "name": "Taken"}, "slug"),
        ({"slug": "Bad Slug!", "name": "Bad"}, "slug"),
        ({"slug": "fine", "name": ""}, "name"),
    ],
)
def test_creating_a_room_shows_validation_errors(client, user, room, data, field):
    client.force_login(user)
    response = client.post("/", data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert 'class="errors"' in response.content.decode()
    assert Room.objects.count() == 1


def test_creating_a_room_needs_the_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/", {"slug": "x", "name": "X"})
    assert response.status_code == 403
    assert not Room.objects.filter(slug="x").exists()


def test_the_owner_adds_a_member_to_a_private_room(client, user, other_user, private_room):
    client.force_login(user)
    page = client.get("/rooms/secret/").content.decode()
    assert 'action="/rooms/secret/members/"' in page
    response = client.post("/rooms/secret/members/", {"username": other_user.username})
    assert response.status_code == 302
    assert private_room.members.filter(pk=other_user.pk).exists()
    client.force_login(other_user)
    assert client.get("/rooms/secret/").status_code == 200


def test_staff_add_members_too(client, staff, other_user, private_room):
    client.force_login(staff)
    response = client.post("/rooms/secret/members/", {"username": other_user.username})
    assert response.status_code == 302
    assert private_room.members.filter(pk=other_user.pk).exists()


def test_adding_an_unknown_user_shows_an_error(client, user, private_room):
    client.force_login(user)
    response = client.post("/rooms/secret/members/", {"username": "ghost"})
    assert response.status_code == 400
    assert "No active user with that name." in response.content.decode()


def test_a_member_who_is_not_the_owner_cannot_add_members(client, user, private_room):
    member, outsider = UserFactory(), UserFactory()
    private_room.members.add(member)
    client.force_login(member)
    page = client.get("/rooms/secret/").content.decode()
    assert 'action="/rooms/secret/members/"' not in page
    response = client.post("/rooms/secret/members/", {"username": outsider.username})
    assert response.status_code == 403
    assert not private_room.members.filter(pk=outsider.pk).exists()


def test_outsiders_cannot_add_themselves_to_a_private_room(client, other_user, private_room):
    client.force_login(other_user)
    response = client.post("/rooms/secret/members/", {"username": other_user.username})
    assert response.status_code == 404
    assert not private_room.members.filter(pk=other_user.pk).exists()


def test_the_dashboard_is_for_staff_only(client, user, staff):
    assert client.get("/dashboard/").status_code == 302
    client.force_login(user)
    forbidden = client.get("/dashboard/")
    assert forbidden.status_code == 403
    assert "Forbidden" in forbidden.content.decode()
    assert 'href="/dashboard/"' not in client.get("/").content.decode()
    client.force_login(staff)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/realtime/dashboard.js" in html
    assert "/static/realtime/vendor/uPlot.min.css" in html
    assert 'href="/dashboard/"' in html
    assert_no_inline_code(html)


def test_staff_announce_from_the_dashboard_and_others_cannot(client, user, staff):
    from realtime.models import Announcement

    client.force_login(user)
    assert client.post("/dashboard/", {"text": "nope"}).status_code == 403
    client.force_login(staff)
    assert client.post("/dashboard/", {"text": "   "}).status_code == 400
    response = client.post("/dashboard/", {"text": "Hello everyone"})
    assert response.status_code == 302
    assert list(Announcement.objects.values_list("text", flat=True)) == ["Hello everyone"]


def test_every_page_carries_the_bell_and_the_announcements_region(client, user):
    client.force_login(user)
    html = client.get("/").content.decode()
    assert "data-bell-count" in html
    assert 'data-announcements aria-live="polite"' in html
    assert "/static/realtime/site.js" in html
    anonymous = Client().get("/login/").content.decode()
    assert "data-bell" not in anonymous
    assert "/static/realtime/site.js" in anonymous


def test_the_page_scripts_are_modules_without_test_globals():
    from pathlib import Path

    static = Path(__file__).resolve().parent.parent / "realtime" / "static" / "realtime"
    for name in ("page.js", "site.js", "room.js", "dashboard.js"):
        source = (static / name).read_text()
        assert "innerHTML" not in source, name
        assert "window.__" not in source and "globalThis.__" not in source, name
        assert "ws://" not in source, name
