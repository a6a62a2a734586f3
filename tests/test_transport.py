"""
The transport adapter over daphne's internals: under the pinned daphne,
autobahn and Twisted the fast path and slow-consumer shedding are active, and
a real server says so once at start. If an upgrade moves what the adapter
reads, these tests fail instead of shedding silently stopping.
"""

import time

from realtime.gateway.transport import capabilities, socket_of

ACTIVE_LINE = "transport: fast path, slow-consumer shedding and handshake refusals active (daphne)"


def test_the_pinned_daphne_has_what_the_fast_path_and_shedding_read():
    assert capabilities() == {"fast_path": True, "shedding": True, "refusing with a status": True}


def test_without_daphne_behind_send_there_is_no_socket_to_reach():
    async def send(message):
        return None

    assert socket_of(send) is None


def test_a_real_server_logs_once_that_both_are_active(daphne_server):
    deadline = time.monotonic() + 5
    while ACTIVE_LINE not in daphne_server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = daphne_server.log.read_text()
    assert log.count(ACTIVE_LINE) == 1, log[-2000:]
    assert "transport: INACTIVE" not in log
