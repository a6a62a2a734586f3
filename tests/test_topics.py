"""The registry of topic families on its own: parsing names, registering a family."""

import pytest

from realtime.gateway.errors import Forbidden, UnknownTopic
from realtime.gateway.topics import FAMILIES, TopicFamily, parse_topic, register


@pytest.fixture
def scratch_family():
    """A family registered for one test, removed afterwards."""

    @register
    class ScratchTopic(TopicFamily):
        name = "scratch"
        key_pattern = r"[a-z]{1,5}"
        example = "scratch:abc"

    yield FAMILIES["scratch"]
    del FAMILIES["scratch"]


def test_the_chat_site_registers_its_four_families():
    assert {"room", "user", "broadcast", "dashboard"} <= set(FAMILIES)


def test_a_name_is_split_into_family_and_key():
    topic = parse_topic("room:general")
    assert (topic.name, topic.family.name, topic.key) == ("room:general", "room", "general")
    assert topic.history and topic.presence


def test_a_family_without_a_key_takes_none():
    assert parse_topic("broadcast").key is None
    with pytest.raises(UnknownTopic):
        parse_topic("broadcast:extra")


@pytest.mark.parametrize(
    "name",
    ["nope:1", "room", "room:", "room:UPPER", "user:0", "user:abc", 42, None, "x" * 101, ""],
)
def test_malformed_or_unknown_names_are_unknown_topics(name):
    with pytest.raises(UnknownTopic):
        parse_topic(name)


def test_registering_a_family_makes_its_topics_known(scratch_family):
    topic = parse_topic("scratch:abc")
    assert topic.family is scratch_family
    with pytest.raises(UnknownTopic, match="scratch:abc"):
        parse_topic("scratch:toolong")


def test_a_family_refuses_by_default(scratch_family, db):
    from django.contrib.auth.models import AnonymousUser

    topic = parse_topic("scratch:abc")
    with pytest.raises(Forbidden):
        scratch_family.check_subscribe(AnonymousUser(), topic)
    with pytest.raises(Forbidden):
        scratch_family.check_publish(AnonymousUser(), topic)
    assert scratch_family.rest_publishing == "nobody"
    assert scratch_family.feed_interval is None
