"""`manage.py demo_data`: demo users, a public and a private room with some history. Idempotent."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from realtime.chat import services
from realtime.models import Room

# username: (password, is_staff/superuser)
USERS = {
    "alice": ("alice-demo-pass", False),
    "bob": ("bob-demo-pass", False),
    "admin": ("admin-demo-pass", True),
}
ROOMS = [
    # slug, name, is_private, owner, other members
    ("lobby", "Lobby", False, "alice", ["bob"]),
    ("staff-room", "Staff room", True, "admin", ["alice"]),
]
HISTORY = {
    "lobby": [
        ("alice", "Welcome to the lobby! Everyone signed in can read this room."),
        ("bob", "Hi @alice, the messages here arrive live over one WebSocket."),
        ("alice", "Open a second tab and post something: it shows up in both."),
    ],
    "staff-room": [
        ("admin", "This room is private: only its members and staff can see it."),
        ("alice", "Good to know. @admin, may I post announcements?"),
    ],
}


class Command(BaseCommand):
    help = "Create the demo users and rooms with some history (running it again changes nothing)."

    def handle(self, *args, **options):
        with transaction.atomic():
            users = {
                name: self.ensure_user(name, password, is_staff)
                for name, (password, is_staff) in USERS.items()
            }
            for slug, name, is_private, owner, members in ROOMS:
                room = Room.objects.filter(slug=slug).first()
                if room is None:
                    room = services.room_create(
                        owner=users[owner], slug=slug, name=name, is_private=is_private
                    )
                    self.stdout.write(f"Created room #{slug}")
                room.members.add(*(users[member] for member in members))
                if not room.messages.exists():
                    for author, text in HISTORY[slug]:
                        services.message_create(room=room, author=users[author], text=text)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in with:"))
        for name, (password, is_staff) in USERS.items():
            role = " (staff, superuser: /admin/)" if is_staff else ""
            self.stdout.write(f"  {name} / {password}{role}")

    def ensure_user(self, username: str, password: str, is_staff: bool):
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={
                "email": f"{username}@example.com",
                "is_staff": is_staff,
                "is_superuser": is_staff,
            },
        )
        if created:
            self.stdout.write(f"Created user {username}")
        # Only when it differs: a new hash would end the user's sessions each run.
        if not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return user
