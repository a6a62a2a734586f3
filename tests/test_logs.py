"""
Logs a machine can filter: with LOG_FORMAT=json every line of a real server's
output is one JSON object, refusals carry the connection, user, topic and
ref, and a client sending the same refused frame over and over makes one line.
"""

import json

from deploy.client import receive, ws_connect
from realtime.gateway.logs import LogLimiter
from tests.live import UNTHROTTLED, LiveServer, member_with_room

PASSWORD = "live-pass-123"


def test_a_log_limiter_allows_one_line_per_kind_per_minute():
    now = [1000.0]
    limiter = LogLimiter(60, clock=lambda: now[0])
    assert limiter.allow("not_found") and limiter.allow("forbidden")
    assert not limiter.allow("not_found")
    now[0] += 61
    assert limiter.allow("not_found")


async def test_json_logs_parse_line_by_line_and_carry_the_ids(live_database):
    server = LiveServer(
        live_database,
        LOG_FORMAT="json",
        **UNTHROTTLED,
    ).start()
    try:
        session, _ = member_with_room(live_database, server, PASSWORD)
        socket_ = await ws_connect(server, session)
        welcome = await receive(socket_)
        for n in range(50):
            await socket_.send(
                json.dumps({"type": "subscribe", "topic": "room:nowhere", "ref": f"r{n}"})
            )
            assert (await receive(socket_))["code"] == "not_found"
        await socket_.close()
    finally:
        server.stop()
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    refusals = [e for e in entries if e["message"].startswith("refused with not_found")]
    assert len(refusals) == 1, refusals  # fifty refused frames, one line
    [refusal] = refusals
    assert refusal["connection_id"] == welcome["connection_id"]
    assert refusal["user_id"] == session.user_id
    assert (refusal["topic"], refusal["ref"]) == ("room:nowhere", "r0")
