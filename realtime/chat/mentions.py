"""`@username` mentions: which names a text mentions, and which of them are real users."""

import re

from django.contrib.auth import get_user_model

MENTION_PATTERN = re.compile(r"(?<![\w@])@([\w.@+-]{1,150})")
# Names looked up per text at most (a 2,000-character text could name hundreds).
MAX_LOOKUP = 50


def mention_names(text: str) -> list[str]:
    """The distinct names `text` mentions, in the order it first names them."""
    names: list[str] = []
    for match in MENTION_PATTERN.finditer(text):
        name = match.group(1).rstrip(".")
        if name and name not in names:
            names.append(name)
    return names


def users_named(names) -> dict:
    """The active users among `names`, by username (one query)."""
    names = set(names)
    if not names:
        return {}
    users = get_user_model().objects.filter(username__in=names, is_active=True)
    return {user.get_username(): user for user in users}


def texts_users(texts) -> dict:
    """The active users mentioned in any of `texts`, by username (one query for a page)."""
    names = set()
    for text in texts:
        names.update(mention_names(text)[:MAX_LOOKUP])
    return users_named(names)


def mentions_in(text: str, known: dict | None = None) -> list[dict]:
    """`{id, username}` of each active user `text` mentions, in order (`known` from texts_users)."""
    names = mention_names(text)[:MAX_LOOKUP]
    if known is None:
        known = users_named(names)
    return [{"id": known[n].pk, "username": n} for n in names if n in known]
