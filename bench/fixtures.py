"""
Bench fixtures, written straight into the bench's own database:
`python -m bench.fixtures SPEC.json OUT.json` (run by bench/run.py with the
server's environment).

Users are created with bulk_create and one password hash computed once with
the server's own hasher (`make_password`), so each bench user could also sign
in through the login page. Signing 5,000 users in through `POST
/api/auth/login/` would spend most of the run in PBKDF2, so their sessions are
written directly, exactly as `django.contrib.auth.login()` would write them
(SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY = the user's session auth
hash). The clients present those `sessionid` cookies; the server still does
its real handshake: Origin check, session load, user load, hash verification.
"""

import json
import os
import sys
from datetime import timedelta


def main(spec_path: str, out_path: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()

    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import transaction
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from realtime.models import Room

    with open(spec_path) as f:
        spec = json.load(f)
    User = get_user_model()
    password_hash = make_password(spec["password"])
    backend = settings.AUTHENTICATION_BACKENDS[0]
    expire = timezone.now() + timedelta(days=1)
    store = SessionStore()
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    with transaction.atomic():
        users = User.objects.bulk_create(
            [
                User(username=f"{spec['prefix']}{i:05d}", password=password_hash)
                for i in range(spec["users"])
            ],
            batch_size=1000,
        )
        sessions = []
        for user in users:
            data = {
                SESSION_KEY: user._meta.pk.value_to_string(user),
                BACKEND_SESSION_KEY: backend,
                HASH_SESSION_KEY: user.get_session_auth_hash(),
            }
            sessions.append(
                Session(
                    session_key=get_random_string(32, chars),
                    session_data=store.encode(data),
                    expire_date=expire,
                )
            )
        Session.objects.bulk_create(sessions, batch_size=1000)
        for slug in spec["rooms"]:
            Room.objects.create(slug=slug, name=slug, owner=users[0])
    with open(out_path, "w") as f:
        json.dump(
            {
                "users": [u.username for u in users],
                "cookies": [f"{settings.SESSION_COOKIE_NAME}={s.session_key}" for s in sessions],
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
