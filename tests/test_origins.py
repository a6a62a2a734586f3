"""
The Origin rule of the handshake: the site's own scheme, an exact host of
ALLOWED_HOSTS and the request's own port, or an origin listed in full.
Unit tests of the rule, one through the real ASGI stack, and the refusal to
start when only a wildcard would allow the site.
"""

import pytest
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured

from config.asgi import application
from realtime.gateway.origins import OriginRule

RULE = OriginRule(
    allowed_hosts=["chat.example.com", "127.0.0.1", ".example.org", "*"],
    allowed_origins=["https://app.example.net"],
    https=False,
)


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://chat.example.com", "chat.example.com"),
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://chat.example.com:80", "chat.example.com"),
        ("HTTP://Chat.Example.com", "chat.example.com"),
        ("https://app.example.net", "chat.example.com"),
    ],
)
def test_the_sites_own_origins_are_allowed(origin, host):
    assert RULE.allows(origin, host)


@pytest.mark.parametrize(
    ("origin", "host", "why"),
    [
        ("http://127.0.0.1:9999", "127.0.0.1:8000", "another port on the same host"),
        ("http://127.0.0.1", "127.0.0.1:8000", "no port where the request has one"),
        ("https://chat.example.com", "chat.example.com", "another scheme"),
        ("http://evil.example", "chat.example.com", "a foreign host"),
        ("http://sub.example.org", "sub.example.org", "a wildcard entry"),
        ("http://anything.test", "anything.test", "the * entry"),
        ("http://chat.example.com.evil.example", "chat.example.com", "a suffix attack"),
        ("http://user@chat.example.com", "chat.example.com", "credentials"),
        ("http://chat.example.com/path", "chat.example.com", "a path"),
        ("null", "chat.example.com", "null"),
        (None, "chat.example.com", "missing"),
        ("", "chat.example.com", "empty"),
        ("http://chat.example.com:notaport", "chat.example.com", "malformed"),
        ("http://chat.example.com", None, "no Host header to compare the port with"),
    ],
)
def test_everything_else_is_refused(origin, host, why):
    assert not RULE.allows(origin, host), why


def test_with_https_only_https_origins_are_the_sites():
    rule = OriginRule(allowed_hosts=["chat.example.com"], allowed_origins=[], https=True)
    assert rule.allows("https://chat.example.com", "chat.example.com")
    assert not rule.allows("http://chat.example.com", "chat.example.com")


@pytest.mark.parametrize("hosts", [["*"], [".example.com"], ["*", ".example.com"], []])
def test_the_server_refuses_to_start_when_only_a_wildcard_would_allow_its_site(hosts):
    with pytest.raises(ImproperlyConfigured, match="DJANGO_ALLOWED_HOSTS"):
        OriginRule(allowed_hosts=hosts, allowed_origins=[], https=False)
    OriginRule(allowed_hosts=hosts, allowed_origins=["https://chat.example.com"], https=False)


@pytest.mark.parametrize(
    ("origin", "host", "accepted"),
    [
        (b"http://localhost:8000", b"localhost:8000", True),
        (b"http://localhost:9999", b"localhost:8000", False),
        (b"https://localhost:8000", b"localhost:8000", False),
    ],
)
async def test_the_rule_guards_the_real_stack(origin, host, accepted):
    communicator = WebsocketCommunicator(
        application, "/ws/", headers=[(b"origin", origin), (b"host", host)]
    )
    connected, _ = await communicator.connect()
    assert connected is accepted
    await communicator.disconnect()
