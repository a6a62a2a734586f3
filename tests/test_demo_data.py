"""`manage.py demo_data`: known logins, a public and a private room with history, idempotent."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from realtime.gateway.history import topic_offset
from realtime.models import Event, Message, Notification, Room

pytestmark = pytest.mark.django_db


def demo_data() -> str:
    out = StringIO()
    call_command("demo_data", stdout=out)
    return out.getvalue()


def test_demo_data_prints_logins_that_work():
    output = demo_data()
    for username, password in (
        ("alice", "alice-demo-pass"),
        ("bob", "bob-demo-pass"),
        ("admin", "admin-demo-pass"),
    ):
        assert f"{username} / {password}" in output
        assert Client().login(username=username, password=password), username
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not get_user_model().objects.get(username="alice").is_staff


def test_demo_data_makes_a_public_and_a_private_room_with_numbered_history():
    demo_data()
    lobby, staff_room = Room.objects.get(slug="lobby"), Room.objects.get(slug="staff-room")
    assert not lobby.is_private and staff_room.is_private
    assert not staff_room.members.filter(username="bob").exists()
    for room in (lobby, staff_room):
        offsets = list(room.messages.values_list("offset", flat=True))
        assert offsets == list(range(1, len(offsets) + 1)) and offsets
        assert topic_offset(room.topic) == len(offsets)
        assert Event.objects.filter(topic=room.topic).count() == len(offsets)
    # The @mentions in the history went out as notifications.
    assert Notification.objects.filter(user__username="alice").exists()


def test_running_demo_data_twice_duplicates_nothing():
    demo_data()
    counts = [model.objects.count() for model in (get_user_model(), Room, Message, Event)]
    password = get_user_model().objects.get(username="alice").password
    demo_data()
    assert [model.objects.count() for model in (get_user_model(), Room, Message, Event)] == counts
    # The password hash is left alone, so a re-run signs nobody out.
    assert get_user_model().objects.get(username="alice").password == password


def test_demo_data_restores_a_changed_demo_password():
    demo_data()
    alice = get_user_model().objects.get(username="alice")
    alice.set_password("something-else")
    alice.save()
    demo_data()
    assert Client().login(username="alice", password="alice-demo-pass")
