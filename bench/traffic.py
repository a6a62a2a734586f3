"""
Load-generator sockets of the issue 12 scenarios (bench/issue12.py), run
inside the worker processes of bench/loadgen.py:

- `RatePublisher`: one publisher socket sending `publish` frames at a steady
  offered rate (or keeping a window of unacked publishes), timing each ack from
  send to ack and counting errors by code;
- `Follower`: one subscriber socket on one or more topics that checks its
  streams (offset order, gaps, duplicates) and, when asked to, reconnects as
  PROTOCOL.md says (4012: a random 0-5 s first, then backoff with full jitter)
  and resubscribes with `since` = the last offset it saw;
- `handshakes`: open authenticated connections at an offered rate (or as fast
  as a concurrency bound allows) and time each from TCP connect to `welcome`.
"""

import asyncio
import random
import time
from array import array

import orjson

from bench.wsclient import OP_TEXT, HandshakeError, connect

SUBPROTOCOL = "realtime.v1"


async def open_socket(port, cookie, on_message, on_close, wait_s=30.0, retry_busy=True):
    """A signed-in socket; a 503 (the server's handshake admission) is retried like
    a real client does, with backoff and jitter, until `wait_s` passes."""
    deadline = time.monotonic() + wait_s
    attempt = 0
    while True:
        try:
            return await connect(
                "127.0.0.1",
                port,
                origin=f"http://127.0.0.1:{port}",
                cookie=cookie,
                subprotocol=SUBPROTOCOL,
                on_message=on_message,
                on_close=on_close,
                wait_s=max(1.0, deadline - time.monotonic()),
            )
        except HandshakeError as error:
            if not retry_busy or " 503 " not in f" {error} " or time.monotonic() > deadline:
                raise
        attempt += 1
        await asyncio.sleep(random.uniform(0, min(2.0, 0.1 * 2**attempt)))


def failure_kind(error: BaseException) -> str:
    """A short label for a failed handshake: what refused it."""
    if isinstance(error, HandshakeError):
        return f"http {str(error).split(' ', 2)[1]}" if " " in str(error) else "handshake"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, ConnectionError):
        return "reset"
    if isinstance(error, TimeoutError):
        return "timeout"
    return type(error).__name__


# Publishing --------------------------------------------------------------------------


class RatePublisher:
    """One publisher socket; `run()` publishes into `topics` round-robin."""

    def __init__(self):
        loop = asyncio.get_running_loop()
        self.ws = None
        self.welcome = loop.create_future()
        self.sent_at: dict[str, float] = {}
        self.latencies = array("d")
        self.acks = 0
        self.errors: dict[str, int] = {}
        self.error_samples: list = []
        self.max_offset: dict[str, int] = {}
        self.acked: dict[str, list[int]] = {}
        self.window: asyncio.Semaphore | None = None
        self.idle = asyncio.Event()
        self.idle.set()
        self.close_code = None
        self.last_ack_at = 0.0

    def on_message(self, opcode, payload):
        if opcode != OP_TEXT:
            return
        frame = orjson.loads(payload)
        kind = frame.get("type")
        if kind == "welcome":
            if not self.welcome.done():
                self.welcome.set_result(frame)
            return
        if kind not in ("ack", "error"):
            return
        sent = self.sent_at.pop(frame.get("ref"), None)
        if sent is None:
            return
        now = time.time()
        if kind == "ack":
            self.acks += 1
            self.last_ack_at = now
            self.latencies.append(now - sent)
            topic, offset = frame["topic"], frame["offset"]
            self.acked.setdefault(topic, []).append(offset)
            if offset > self.max_offset.get(topic, 0):
                self.max_offset[topic] = offset
        else:
            code = frame.get("code", "?")
            self.errors[code] = self.errors.get(code, 0) + 1
            if len(self.error_samples) < 3:
                self.error_samples.append(frame)
        if self.window is not None:
            self.window.release()
        if not self.sent_at:
            self.idle.set()

    def on_close(self, code):
        self.close_code = code
        self.idle.set()

    async def open(self, port, cookie, wait_s=30.0):
        self.ws = await open_socket(port, cookie, self.on_message, self.on_close, wait_s)
        welcome = await asyncio.wait_for(self.welcome, wait_s)
        if welcome.get("user") is None:
            raise RuntimeError("welcome says anonymous: the session was not accepted")

    async def run(self, topics, rate, duration, window=None, stop: asyncio.Event | None = None):
        """Publish at `rate`/s for `duration` s (or until `stop`); with `window`,
        as fast as acks come back with at most `window` unacked."""
        self.window = asyncio.Semaphore(window) if window else None
        first = time.time()
        i = 0
        while self.close_code is None:
            now = time.time()
            if (duration is not None and now - first >= duration) or (stop and stop.is_set()):
                break
            if self.window is not None:
                await self.window.acquire()
            else:
                delay = first + i / rate - now
                if delay > 0:
                    await asyncio.sleep(delay)
            ref = f"p{i}"
            topic = topics[i % len(topics)]
            self.idle.clear()
            self.sent_at[ref] = time.time()
            text = f"bench {self.sent_at[ref]:.6f} {i}"
            self.ws.send_text(
                orjson.dumps(
                    {"type": "publish", "topic": topic, "ref": ref, "data": {"text": text}}
                )
            )
            i += 1
        return {"first_sent": first, "last_sent": time.time(), "sent": i}

    async def drain(self, wait_s):
        try:
            await asyncio.wait_for(self.idle.wait(), wait_s)
        except TimeoutError:
            pass
        return len(self.sent_at)


def merge_publishers(publishers: list[RatePublisher], runs: list[dict]) -> dict:
    errors: dict[str, int] = {}
    max_offset: dict[str, int] = {}
    latencies = array("d")
    samples = []
    for p in publishers:
        latencies.extend(p.latencies)
        for code, n in p.errors.items():
            errors[code] = errors.get(code, 0) + n
        for topic, offset in p.max_offset.items():
            max_offset[topic] = max(offset, max_offset.get(topic, 0))
        samples += p.error_samples
    return {
        "first_sent": min((r["first_sent"] for r in runs), default=0.0),
        "last_sent": max((r["last_sent"] for r in runs), default=0.0),
        "sent": sum(r["sent"] for r in runs),
        "acks": sum(p.acks for p in publishers),
        "unanswered": sum(len(p.sent_at) for p in publishers),
        "last_ack_at": max((p.last_ack_at for p in publishers), default=0.0),
        "errors": errors,
        "error_samples": samples[:3],
        "max_offset": max_offset,
        "closes": [p.close_code for p in publishers if p.close_code is not None],
        "latencies": latencies.tobytes(),
    }


async def publish_run(targets, rate, duration, window, wait_s):
    """targets: [(port, cookie, [topics])]: open every publisher, then all publish."""
    publishers = [RatePublisher() for _ in targets]
    await asyncio.gather(
        *(
            p.open(port, cookie, wait_s)
            for p, (port, cookie, _) in zip(publishers, targets, strict=True)
        )
    )
    # Spread the sockets' send times over one period rather than all at once.
    offsets = [random.random() / rate if rate else 0.0 for _ in publishers]

    async def one(p, topics, delay):
        await asyncio.sleep(delay)
        return await p.run(topics, rate, duration, window)

    runs = await asyncio.gather(
        *(one(p, t[2], d) for p, t, d in zip(publishers, targets, offsets, strict=True))
    )
    await asyncio.gather(*(p.drain(wait_s) for p in publishers))
    result = merge_publishers(publishers, runs)
    for p in publishers:
        p.ws.close()
    return result


# Following (subscribers that check their streams, and reconnect) -------------------


class TopicState:
    __slots__ = ("base", "caught_up_at", "duplicates", "gaps", "last", "seen", "target")

    def __init__(self):
        self.base = None  # the topic's offset at the first `subscribed`
        self.last = None  # the highest offset seen (or the base)
        self.seen: set[int] = set()
        self.gaps = 0
        self.duplicates = 0
        self.target = None  # the topic's offset at the latest `subscribed`
        self.caught_up_at = None


class Follower:
    """One socket subscribed to `topics`; with `reconnect`, it comes back by itself."""

    def __init__(self, worker, port, cookie, topics, reconnect):
        self.worker = worker
        self.port, self.cookie, self.topics = port, cookie, topics
        self.reconnect = reconnect
        self.state = {t: TopicState() for t in topics}
        self.ws = None
        self.welcome: asyncio.Future | None = None
        self.pending: set[str] = set()
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.stopping = False
        self.closes: list[int | None] = []
        self.closed_at = None  # the first unexpected close
        self.back_at = None  # `welcome` after it
        self.resubscribed_at = None  # every topic `subscribed` again after it
        self.recovered = True  # every `subscribed` after a close said recovered: true
        self.recovered_at = None  # every topic caught up again after it
        self.attempts = 0  # reconnect attempts
        self.failed_attempts = 0
        self.errors = 0
        self.error_samples: list = []
        self.reconnecting = False

    # Frames -----------------------------------------------------------------------

    def on_message(self, opcode, payload):
        if opcode != OP_TEXT:
            return
        frame = orjson.loads(payload)
        kind = frame.get("type")
        now = time.time()
        if kind == "event":
            state = self.state.get(frame["topic"])
            if state is None:
                return
            offset = frame["offset"]
            if offset in state.seen or (state.base is not None and offset <= state.base):
                state.duplicates += 1
                return
            if state.last is not None and offset > state.last + 1:
                state.gaps += 1
            state.seen.add(offset)
            if state.last is None or offset > state.last:
                state.last = offset
            if state.caught_up_at is None and state.target is not None and offset >= state.target:
                state.caught_up_at = now
                self.check_recovered(now)
        elif kind == "welcome":
            if self.welcome is not None and not self.welcome.done():
                self.welcome.set_result(frame)
        elif kind == "subscribed":
            topic = frame["topic"]
            state = self.state[topic]
            latest = frame["offset"] or 0
            if state.base is None:
                state.base = state.last = latest
            if frame.get("recovered") is False:
                self.recovered = False
            state.target = latest
            state.caught_up_at = now if (state.last or 0) >= latest else None
            self.pending.discard(topic)
            if not self.pending:
                if self.closed_at is not None and self.resubscribed_at is None:
                    self.resubscribed_at = now
                if not self.ready.done():
                    self.ready.set_result(None)
                self.check_recovered(now)
        elif kind == "error":
            self.errors += 1
            if len(self.error_samples) < 3:
                self.error_samples.append(frame)
            if frame.get("topic") in self.pending and not self.ready.done():
                self.ready.set_exception(RuntimeError(str(frame)[:200]))
                self.ready.exception()

    def check_recovered(self, now):
        if self.closed_at is None or self.recovered_at is not None or self.pending:
            return
        if all(s.caught_up_at is not None for s in self.state.values()):
            self.recovered_at = now

    def on_close(self, code):
        self.closes.append(code)
        self.worker.closes[code] = self.worker.closes.get(code, 0) + 1
        if self.welcome is not None and not self.welcome.done():
            self.welcome.set_exception(ConnectionError(f"closed before welcome ({code})"))
            self.welcome.exception()
        if self.stopping or not self.reconnect or code in (1000, 4000, 4003, 4009, 4029, 4401):
            return
        if self.closed_at is None:
            self.closed_at = time.time()
        if not self.reconnecting:
            self.reconnecting = True
            asyncio.get_running_loop().create_task(self.come_back(code))

    # Connecting -------------------------------------------------------------------

    async def open(self, wait_s):
        """Connect, wait for `welcome`, subscribe to every topic (with `since` once known)."""
        loop = asyncio.get_running_loop()
        self.welcome = loop.create_future()
        self.ws = await open_socket(self.port, self.cookie, self.on_message, self.on_close, wait_s)
        welcome = await asyncio.wait_for(self.welcome, wait_s)
        if welcome.get("user") is None:
            raise RuntimeError("welcome says anonymous: the session was not accepted")
        if self.closed_at is not None and self.back_at is None:
            self.back_at = time.time()
        self.pending = set(self.topics)
        for topic in self.topics:
            frame = {"type": "subscribe", "topic": topic, "ref": "s"}
            state = self.state[topic]
            if state.last is not None:
                frame["since"] = state.last
            self.ws.send_text(orjson.dumps(frame))

    async def come_back(self, code):
        """PROTOCOL.md: after 4012 a random 0-5 s first; then full-jitter backoff."""
        try:
            if code == 4012:
                await asyncio.sleep(random.uniform(0, 5))
            attempt = 0
            while not self.stopping:
                if attempt or code != 4012:
                    await asyncio.sleep(random.uniform(0, min(30.0, 0.5 * 2**attempt)))
                self.attempts += 1
                attempt += 1
                try:
                    await self.open(wait_s=10)
                    return
                except Exception:
                    self.failed_attempts += 1
                    if self.ws is not None:
                        self.ws.abort()
        finally:
            self.reconnecting = False

    def missing(self, expected: dict[str, int]) -> dict[str, list[int]]:
        """Offsets up to `expected[topic]` (past the first base) this socket never got."""
        out = {}
        for topic, state in self.state.items():
            top = expected.get(topic, 0)
            if state.base is None or top <= state.base:
                continue
            lost = [o for o in range(state.base + 1, top + 1) if o not in state.seen]
            if lost:
                out[topic] = lost
        return out

    def has_all(self, expected: dict[str, int]) -> bool:
        for topic, state in self.state.items():
            top = expected.get(topic, 0)
            if state.base is not None and top > state.base and (state.last or 0) < top:
                return False
        return not self.missing(expected) if expected else True


# Handshakes -------------------------------------------------------------------------


class Greeted:
    """A bare authenticated socket: waits for `welcome`, ignores the rest."""

    __slots__ = ("close_code", "welcome", "ws")

    def __init__(self):
        self.ws = None
        self.welcome = asyncio.get_running_loop().create_future()
        self.close_code = None

    def on_message(self, opcode, payload):
        if opcode == OP_TEXT and not self.welcome.done() and b'"welcome"' in payload:
            self.welcome.set_result(orjson.loads(payload))

    def on_close(self, code):
        self.close_code = code
        if not self.welcome.done():
            self.welcome.set_exception(ConnectionError(f"closed before welcome ({code})"))
            self.welcome.exception()


async def handshakes(targets, rate, concurrency, wait_s, keep: list):
    """Open `targets` [(port, cookie)]: at `rate`/s (open loop) or, without a rate,
    as fast as `concurrency` handshakes in flight allow. Opened sockets go to `keep`."""
    times = array("d")
    starts = array("d")
    failures: dict[str, int] = {}
    samples: list[str] = []
    semaphore = asyncio.Semaphore(concurrency) if not rate else None

    async def one(port, cookie):
        client = Greeted()
        t0 = time.perf_counter()
        starts.append(time.time())
        try:
            client.ws = await open_socket(
                port, cookie, client.on_message, client.on_close, wait_s, retry_busy=False
            )
            welcome = await asyncio.wait_for(client.welcome, wait_s)
            if welcome.get("user") is None:
                raise RuntimeError("anonymous welcome")
            times.append(time.perf_counter() - t0)
            keep.append(client)
        except Exception as error:
            kind = failure_kind(error)
            if isinstance(error, ConnectionError) and client.close_code is not None:
                kind = f"close {client.close_code}"
            failures[kind] = failures.get(kind, 0) + 1
            if len(samples) < 3:
                samples.append(f"{type(error).__name__}: {error}"[:200])
            if client.ws is not None:
                client.ws.abort()

    async def bounded(port, cookie):
        async with semaphore:
            await one(port, cookie)

    started = time.time()
    if rate:
        tasks = []
        for i, (port, cookie) in enumerate(targets):
            delay = started + i / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(port, cookie)))
        await asyncio.gather(*tasks)
    else:
        await asyncio.gather(*(bounded(port, cookie) for port, cookie in targets))
    return {
        "started": started,
        "done": time.time(),
        "ok": len(times),
        "failures": failures,
        "failure_samples": samples,
        "handshake_times": times.tobytes(),
    }
