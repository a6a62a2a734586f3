"""
Unread counts kept on the server per user and room, announcements dismissed per
person, the dashboard's last five minutes (docs/api.md, "Read state,
announcements, dashboard history").
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from realtime.chat import services
from realtime.chat.dashboard import dashboard_history, dashboard_sample_record
from realtime.chat.models import Announcement, Notification
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def as_user(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def post(room, author, text="hello"):
    return services.message_create(room=room, author=author, text=text).offset


def unread_of(user, slug: str) -> int:
    rooms = as_user(user).get("/api/rooms/").json()
    return next(room["unread"] for room in rooms if room["slug"] == slug)


def test_unread_counts_the_messages_of_others_after_the_read_state(room, user, other_user):
    post(room, user, "mine")  # one's own messages are never unread
    first = post(room, other_user, "one")
    post(room, other_user, "two")
    assert unread_of(user, "general") == 2
    assert unread_of(other_user, "general") == 1

    response = as_user(user).post("/api/rooms/general/read/", {"offset": first}, format="json")
    assert response.status_code == 200
    assert response.json() == {"offset": first, "unread": 1}
    assert unread_of(user, "general") == 1
    # Each user's read state is their own: the other's count did not move.
    assert unread_of(other_user, "general") == 1


def test_the_read_state_never_moves_back_and_is_clamped_to_the_last_message(room, user, other_user):
    post(room, other_user)
    last = post(room, other_user)
    client = as_user(user)
    answer = client.post("/api/rooms/general/read/", {"offset": 10**9}, format="json").json()
    assert answer == {"offset": last, "unread": 0}
    # A later message is unread although the client claimed to have read far ahead.
    post(room, other_user)
    assert unread_of(user, "general") == 1
    back = client.post("/api/rooms/general/read/", {"offset": 1}, format="json").json()
    assert back == {"offset": last, "unread": 1}


def test_the_rooms_list_page_shows_the_counts_and_the_total_in_the_title(
    client, room, user, other_user
):
    post(room, other_user)
    post(room, other_user)
    client.force_login(user)
    page = client.get("/").content.decode()
    assert "<title>(2) Rooms · Realtime</title>" in page
    assert "<span data-unread-count>2</span> unread" in page
    as_user(user).post("/api/rooms/general/read/", {"offset": 2}, format="json")
    page = client.get("/").content.decode()
    assert "<title>Rooms · Realtime</title>" in page


def test_a_private_room_is_a_404_for_outsiders_and_its_counts_never_show(
    private_room, user, other_user
):
    post(private_room, user)
    outsider = as_user(other_user)
    response = outsider.post("/api/rooms/secret/read/", {"offset": 1}, format="json")
    assert response.status_code == 404
    assert response.json() == outsider.post("/api/rooms/nope/read/", {"offset": 1}).json()
    assert "secret" not in [room["slug"] for room in outsider.get("/api/rooms/").json()]


def test_marking_read_refuses_anonymous_and_hostile_offsets(room, user):
    assert as_user(None).post("/api/rooms/general/read/", {"offset": 1}).status_code == 403
    client = as_user(user)
    for bad in (-1, "x", None, 2**63, 1.5, [1]):
        response = client.post("/api/rooms/general/read/", {"offset": bad}, format="json")
        assert response.status_code == 400, bad
        assert "offset" in response.json()
    assert client.post("/api/rooms/general/read/", {}, format="json").status_code == 400


def test_a_mention_links_to_its_message(room, user, other_user):
    post(room, other_user, f"hi @{user.username}")
    note = Notification.objects.get(user=user)
    message_id = room.messages.get().pk
    assert note.url == f"/rooms/general/#message-{message_id}"


def test_recent_announcements_are_listed_until_dismissed_by_that_person(user, other_user, staff):
    old = Announcement.objects.create(
        text="last month", author=staff, created_at=timezone.now() - timedelta(days=30)
    )
    services.announcement_create(author=staff, text="first")
    services.announcement_create(author=staff, text="second")
    texts = [a["text"] for a in as_user(user).get("/api/announcements/").json()]
    assert texts == ["second", "first"]
    # Anonymous visitors see them too (they dismiss in their own browser).
    assert len(as_user(None).get("/api/announcements/").json()) == 2

    first = Announcement.objects.get(text="first")
    assert as_user(user).post(f"/api/announcements/{first.pk}/dismiss/").status_code == 204
    assert as_user(user).post(f"/api/announcements/{first.pk}/dismiss/").status_code == 204
    assert [a["text"] for a in as_user(user).get("/api/announcements/").json()] == ["second"]
    # Someone else's dismissal is theirs alone.
    assert len(as_user(other_user).get("/api/announcements/").json()) == 2

    assert as_user(None).post(f"/api/announcements/{first.pk}/dismiss/").status_code == 403
    assert as_user(user).post("/api/announcements/999999/dismiss/").status_code == 404
    assert as_user(user).post(f"/api/announcements/{10**30}/dismiss/").status_code == 404
    assert old.pk not in [a["id"] for a in as_user(user).get("/api/announcements/").json()]


def test_only_the_newest_five_announcements_are_listed(staff):
    for n in range(7):
        services.announcement_create(author=staff, text=f"n{n}")
    texts = [a["text"] for a in as_user(staff).get("/api/announcements/").json()]
    assert texts == ["n6", "n5", "n4", "n3", "n2"]


def test_dashboard_history_keeps_five_minutes_for_staff_only(user, staff):
    now = timezone.now()
    for seconds_ago in (400, 200, 2, 1):
        stats = {"connections": seconds_ago, "users_online": 1, "messages_per_second": 0.5}
        dashboard_sample_record(stats, at=now - timedelta(seconds=seconds_ago))
    assert [s["connections"] for s in dashboard_history(now=now)] == [200, 2, 1]

    assert as_user(user).get("/api/dashboard/history/").status_code == 403
    assert as_user(None).get("/api/dashboard/history/").status_code == 403
    samples = as_user(staff).get("/api/dashboard/history/").json()
    assert [s["connections"] for s in samples] == [200, 2, 1]
    assert set(samples[0]) == {
        "ts",
        "connections",
        "users_online",
        "messages_per_second",
        "delivery_lag_ms",
    }


def test_a_room_never_opened_counts_the_messages_since_the_user_signed_up(room, other_user):
    post(room, other_user, "before the newcomer came")
    newcomer = UserFactory()
    assert unread_of(newcomer, "general") == 0
    post(room, other_user, "after")
    assert unread_of(newcomer, "general") == 1
