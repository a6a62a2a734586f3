"""
Metrics: `/metrics` serves the Prometheus exposition of every process of the
machine to staff and to the listed addresses only, and its counters match
what two real daphne processes did under a small load.
"""

import asyncio
import json
import socket as sockets
import uuid

import pytest
import websockets
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from deploy.client import HttpSession, receive, receive_until, ws_connect
from tests.live import UNTHROTTLED, LiveServer

PASSWORD = "live-pass-123"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "address", "allowed"),
    [
        ("anonymous", "127.0.0.1", True),
        ("anonymous", "10.1.2.3", False),
        ("user", "10.1.2.3", False),
        ("staff", "10.1.2.3", True),
        ("staff token", "10.1.2.3", True),
        ("user token", "10.1.2.3", False),
    ],
)
def test_metrics_are_for_staff_and_listed_addresses_only(who, address, allowed, user, staff):
    client = Client(REMOTE_ADDR=address)
    headers = {}
    if who == "user":
        client.force_login(user)
    elif who == "staff":
        client.force_login(staff)
    elif who.endswith("token"):
        owner = staff if who.startswith("staff") else user
        headers["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=owner).key}"
    response = client.get("/metrics", **headers)
    assert response.status_code == (200 if allowed else 403)
    if allowed:
        assert "# HELP realtime_" in response.content.decode()


def samples_of(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def metrics_text(server: LiveServer) -> str:
    import urllib.request

    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        return response.read().decode()


@pytest.mark.redis
async def test_two_processes_are_counted_once_by_one_scrape(
    live_database, require_redis, redis_prefix, tmp_path
):
    env = {
        "REALTIME_REDIS_PREFIX": redis_prefix,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        **UNTHROTTLED,
        "REALTIME_MAX_BACKLOG_BYTES": str(64 * 1024),
    }
    a, b = (LiveServer(live_database, redis_url=require_redis, **env).start() for _ in range(2))
    try:
        name = f"m{uuid.uuid4().hex[:8]}"
        live_database.create_user(name, PASSWORD)
        on = {server: HttpSession(server).login(name, PASSWORD) for server in (a, b)}
        slug = f"r{uuid.uuid4().hex[:8]}"
        assert on[a].request("POST", "/api/rooms/", {"slug": slug, "name": slug})[0] == 201
        topic = f"room:{slug}"

        async def subscriber(server, **kwargs):
            socket_ = await ws_connect(server, on[server], **kwargs)
            await receive(socket_)
            await socket_.send(json.dumps({"type": "subscribe", "topic": topic}))
            await receive_until(socket_, "presence_state")
            return socket_

        readers = [await subscriber(a), await subscriber(a), await subscriber(b)]
        # One that reads nothing, to be shed with 4008.
        raw = sockets.socket()
        raw.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", b.port))
        slow = await subscriber(b, sock=raw, max_queue=1)
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(b.ws_url, origin="http://evil.example")
        publisher = await ws_connect(a, on[a])
        await receive(publisher)
        count, text = 1500, "x" * 1990
        for i in range(count):
            await publisher.send(
                json.dumps({"type": "publish", "topic": topic, "data": {"text": f"{i} {text}"}})
            )

        async def read_all(socket_):
            seen = 0
            while seen < count:
                frame = await receive(socket_, timeout=30)
                seen += frame["type"] == "event"

        await asyncio.gather(*(read_all(r) for r in readers))
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await receive(slow, timeout=30)
        assert slow.close_code == 4008
        for reader in readers[:2]:
            await reader.close()
        await asyncio.sleep(1)

        from_a, from_b = samples_of(metrics_text(a)), samples_of(metrics_text(b))
        counters = [
            ("realtime_publishes_total", (("family", "room"),)),
            ("realtime_handshakes_total", (("outcome", "origin_refused"),)),
            ("realtime_slow_consumers_shed_total", ()),
            ("realtime_closes_total", (("code", "4008"),)),
            ("realtime_closes_total", (("code", "1000"),)),
            ("realtime_deliveries_total", ()),
        ]
        for key in counters:
            assert from_a.get(key) == from_b.get(key), key  # one machine, one answer
        assert from_a[("realtime_publishes_total", (("family", "room"),))] == count
        assert from_a[("realtime_handshakes_total", (("outcome", "origin_refused"),))] == 1
        assert from_a[("realtime_slow_consumers_shed_total", ())] == 1
        assert from_a[("realtime_closes_total", (("code", "4008"),))] == 1
        assert from_a[("realtime_closes_total", (("code", "1000"),))] == 2
        # Every event reached the three readers; the slow one got some before it was shed.
        deliveries = from_a[("realtime_deliveries_total", ())]
        assert 3 * count <= deliveries <= 4 * count
        # Open now: one reader on b, the publisher on a (both signed in).
        assert from_a[("realtime_connections", (("kind", "authenticated"),))] == 2
        for socket_ in (readers[2], publisher):
            await socket_.close()
    finally:
        a.stop()
        b.stop()


def test_the_alerts_and_the_dashboard_name_only_metrics_that_exist():
    import re
    from pathlib import Path

    import yaml

    from realtime.gateway import metrics

    root = Path(__file__).resolve().parent.parent
    alerts = yaml.safe_load((root / "deploy/prometheus/alerts.yml").read_text())
    rules = [rule for group in alerts["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {
        "RealtimeNoHealthyProcess",
        "RealtimeDeliveryLagHigh",
        "RealtimeErrorRateHigh",
        "RealtimeSheddingHigh",
        "RealtimeProcessReaped",
    }
    dashboard = json.loads((root / "deploy/grafana/realtime.json").read_text())
    expressions = [rule["expr"] for rule in rules] + [
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    ]
    defined = {
        value._name
        for value in vars(metrics).values()
        if hasattr(value, "_name") and hasattr(value, "_type")
    }
    for expression in expressions:
        for name in re.findall(r"realtime_[a-z_]+", expression):
            base = re.sub(r"_(bucket|count|sum|total)$", "", name)
            assert base in defined or name in defined, (name, expression)
