"""The admin: pages load for staff and refuse others; its actions publish live."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from realtime.chat import services
from realtime.models import Announcement, Event, Notification, Room
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/",
    "/admin/realtime/user/",
    "/admin/realtime/user/add/",
    "/admin/realtime/room/",
    "/admin/realtime/room/add/",
    "/admin/realtime/message/",
    "/admin/realtime/message/?q=hello",
    "/admin/realtime/notification/",
    "/admin/realtime/announcement/",
    "/admin/realtime/announcement/add/",
    "/admin/realtime/event/",
]


@pytest.fixture
def admin_client_(db):
    client = Client()
    client.force_login(StaffFactory(username="boss", is_superuser=True))
    return client


@pytest.fixture
def history(user, room):
    services.message_create(room=room, author=user, text="hello there")
    services.notification_create(user=user, title="note")
    services.announcement_create(author=None, text="news")


@pytest.mark.parametrize("path", PAGES)
def test_admin_pages_load_for_staff(admin_client_, history, path):
    response = admin_client_.get(path)
    assert response.status_code == 200, path


def test_admin_change_pages_load_for_staff(admin_client_, history, user, room):
    for path in (
        f"/admin/realtime/user/{user.pk}/change/",
        f"/admin/realtime/room/{room.pk}/change/",
        f"/admin/realtime/message/{room.messages.get().pk}/change/",
        f"/admin/realtime/event/{Event.objects.first().pk}/change/",
        f"/admin/realtime/announcement/{Announcement.objects.get().pk}/change/",
    ):
        assert admin_client_.get(path).status_code == 200, path


def test_message_admin_searches_text_and_filters_by_room(admin_client_, user, room):
    other_room = Room.objects.create(slug="elsewhere", name="Elsewhere", owner=user)
    services.message_create(room=room, author=user, text="needle in general")
    services.message_create(room=other_room, author=user, text="needle elsewhere")
    services.message_create(room=room, author=user, text="haystack")
    found = admin_client_.get("/admin/realtime/message/?q=needle").content.decode()
    assert "needle in general" in found and "needle elsewhere" in found
    assert "haystack" not in found
    filtered = admin_client_.get(f"/admin/realtime/message/?room__id__exact={room.pk}")
    html = filtered.content.decode()
    assert "needle in general" in html and "haystack" in html
    assert "needle elsewhere" not in html


@pytest.mark.parametrize("path", ["/admin/", "/admin/realtime/user/", "/admin/realtime/room/"])
def test_admin_pages_refuse_signed_in_non_staff_and_anonymous(user, path):
    anonymous = Client().get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_notification_action_asks_for_the_text_then_notifies_each_selected_user(
    admin_client_, django_capture_on_commit_callbacks
):
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    selection = {"action": "send_notification", ACTION_CHECKBOX_NAME: [alice.pk, bob.pk]}
    page = admin_client_.post("/admin/realtime/user/", selection)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="title"' in html and alice.username in html and carol.username not in html
    assert not Notification.objects.exists()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        done = admin_client_.post(
            "/admin/realtime/user/",
            {**selection, "apply": "1", "title": "Deploy tonight", "body": "at 22:00", "url": "/"},
        )
    assert done.status_code == 302
    notes = Notification.objects.order_by("user_id")
    assert [(n.user, n.title, n.body, n.url) for n in notes] == [
        (alice, "Deploy tonight", "at 22:00", "/"),
        (bob, "Deploy tonight", "at 22:00", "/"),
    ]
    assert all(n.offset == 1 for n in notes)
    assert set(Event.objects.values_list("topic", flat=True)) == {
        f"user:{alice.pk}",
        f"user:{bob.pk}",
    }
    assert len(callbacks) == 2  # one broadcast per notification, on commit


def test_the_notification_action_without_a_title_shows_the_form_again(admin_client_):
    alice = UserFactory()
    response = admin_client_.post(
        "/admin/realtime/user/",
        {
            "action": "send_notification",
            ACTION_CHECKBOX_NAME: [alice.pk],
            "apply": "1",
            "title": "",
        },
    )
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not Notification.objects.exists()


def test_adding_an_announcement_in_the_admin_publishes_it_on_broadcast(admin_client_):
    response = admin_client_.post("/admin/realtime/announcement/add/", {"text": "  Welcome!  "})
    assert response.status_code == 302
    announcement = Announcement.objects.get()
    assert announcement.text == "Welcome!"
    assert announcement.author.username == "boss"
    assert announcement.offset == 1
    event = Event.objects.get(topic="broadcast")
    assert event.data["kind"] == "announcement"
    assert event.data["id"] == announcement.pk


def test_an_empty_announcement_is_refused(admin_client_):
    response = admin_client_.post("/admin/realtime/announcement/add/", {"text": "   "})
    assert response.status_code == 200
    assert not Announcement.objects.exists()
    assert not Event.objects.exists()


def test_a_room_added_in_the_admin_has_its_owner_and_inline_members(admin_client_, user):
    member = UserFactory()
    response = admin_client_.post(
        "/admin/realtime/room/add/",
        {
            "slug": "from-admin",
            "name": "From admin",
            "is_private": "on",
            "owner": user.pk,
            "Room_members-TOTAL_FORMS": "1",
            "Room_members-INITIAL_FORMS": "0",
            "Room_members-MIN_NUM_FORMS": "0",
            "Room_members-MAX_NUM_FORMS": "1000",
            "Room_members-0-user": member.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    room = Room.objects.get(slug="from-admin")
    assert set(room.members.all()) == {user, member}


def test_stored_history_cannot_be_added_or_edited_by_hand(admin_client_):
    for model in ("message", "notification", "event"):
        assert admin_client_.get(f"/admin/realtime/{model}/add/").status_code == 403
