"""
Authorization of the moment (PROTOCOL.md, "Authorization holds"): every check
reads the user as the database has them now, not as the handshake saw them,
so a demoted staff member or a deactivated user loses their rights on their
open sockets too. These run in a database thread.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from realtime.gateway.errors import RealtimeError
from realtime.gateway.topics import Topic


def user_of_the_moment(user):
    """`user` reloaded from the database; anonymous once deleted or deactivated."""
    if not user.is_authenticated:
        return user
    fresh = get_user_model()._default_manager.filter(pk=user.pk).first()
    if fresh is None or not fresh.is_active:
        return AnonymousUser()
    return fresh


def users_of_the_moment(users) -> dict:
    """The signed-in ones among `users` as the database has them now, by pk (one query).

    Deleted and deactivated users are missing: they act as anonymous.
    """
    ids = {user.pk for user in users if user.is_authenticated}
    if not ids:
        return {}
    found = get_user_model()._default_manager.in_bulk(ids)
    return {pk: user for pk, user in found.items() if user.is_active}


def authorize_subscribe(user, topic: Topic) -> None:
    """Raise Forbidden or NotFound unless the user, as of now, may subscribe."""
    topic.family.check_subscribe(user_of_the_moment(user), topic)


def subscriptions_refused(user, topics: list[Topic]) -> dict[str, RealtimeError]:
    """The topics among `topics` the user, as of now, may no longer subscribe to."""
    current = user_of_the_moment(user)
    refused = {}
    for topic in topics:
        try:
            topic.family.check_subscribe(current, topic)
        except RealtimeError as error:
            refused[topic.name] = error
    return refused
