"""
Authorization of the moment (PROTOCOL.md, "Authorization holds"): every check
reads the user as the database has them now, not as the handshake saw them,
so a demoted staff member or a deactivated user loses their rights on their
open sockets too. These run in a database thread.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from realtime.gateway.errors import RealtimeError
from realtime.gateway.publishing import Publication, publish_as
from realtime.gateway.topics import Topic


def user_of_the_moment(user):
    """`user` reloaded from the database; anonymous once deleted or deactivated."""
    if not user.is_authenticated:
        return user
    fresh = get_user_model()._default_manager.filter(pk=user.pk).first()
    if fresh is None or not fresh.is_active:
        return AnonymousUser()
    return fresh


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


def publish_as_of_now(user, topic: Topic, data: dict, *, client_id: str | None) -> Publication:
    """A socket's publish, checked against the user as of now."""
    return publish_as(user_of_the_moment(user), topic, data, client_id=client_id)
