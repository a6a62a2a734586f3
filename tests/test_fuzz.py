"""Hostile input: random and malformed frames never close a socket with 1011 nor raise."""

import asyncio
import json
import logging

import pytest
from django.conf import settings
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from realtime.gateway.testing import connect

pytestmark = pytest.mark.django_db(transaction=True)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
topics = st.sampled_from(
    ["room:general", "room:nope", "room:", "user:1", "user:0", "broadcast", "dashboard", "x", ""]
) | st.text(max_size=120)
protocol_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "unsubscribe", "publish", "ping", "pong", "PING"])},
    optional={
        "topic": topics | json_values,
        "ref": st.text(max_size=70) | json_values,
        "since": st.integers(min_value=-5, max_value=2**70) | json_values,
        "data": st.fixed_dictionaries({}, optional={"text": st.text(max_size=50) | json_values})
        | json_values,
        "id": st.text(max_size=70) | json_values,
    },
)
frames_as_text = st.one_of(
    protocol_frames.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.just("[" * 3000),
    st.just('{"type": "ping", "x": ' + "[" * 2000 + "]" * 2000 + "}"),
)


class Collector(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@override_settings(REALTIME={**settings.REALTIME, "RATE_BURST": 10_000, "RATE_PER_SECOND": 10_000})
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(frames_as_text, min_size=1, max_size=12))
def test_random_frames_never_close_the_socket_and_ping_still_answers(user, room, batch):
    collector = Collector()
    logging.getLogger().addHandler(collector)
    try:
        asyncio.run(throw_frames(user, batch))
    finally:
        logging.getLogger().removeHandler(collector)
    assert not collector.records, [r.getMessage() for r in collector.records]


async def throw_frames(user, batch):
    client = await connect(user)
    for text in batch:
        await client.send_text(text)
    await client.send({"type": "ping", "ref": "alive"})
    while True:
        output = await client.communicator.receive_output(3)
        assert output["type"] != "websocket.close", output
        frame = json.loads(output["text"])
        assert frame.get("code") != "server_error", frame
        if frame == {"type": "pong", "ref": "alive"}:
            break
    await client.close()
