"""
Soak: delivery under churn and faults, on two real daphne processes sharing
one PostgreSQL (behind a TCP proxy that can cut it) and one private Redis.

Subscribers and publishers come and go (clean closes and aborts, reconnecting
with `since`), while one process is SIGKILLed, Redis restarts, the database is
cut and one process is SIGTERMed. Every socket checks its streams (in order,
no gap, no repeat, `recovered: true` on every resubscribe); at the end every
subscriber must have every offset of its rooms since it first subscribed,
every acked publish must be stored exactly once at its acked offset, and
Redis must hold no registry, presence or connection-count entry once the last
socket is gone.

`SOAK_SECONDS` (default 60) bounds the faulty part; `make soak` runs 600.
docs/operations.md ("Soak test") explains the table it prints.
"""

import asyncio
import bisect
import itertools
import json
import math
import os
import random
import re
import signal
import time
import uuid
from collections import Counter, defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
import websockets

from deploy.client import HttpSession, ws_connect
from tests.faults import TcpProxy
from tests.live import LiveServer

SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "60"))
LONG = SOAK_SECONDS >= 300
SUBSCRIBERS = int(os.environ.get("SOAK_SUBSCRIBERS", "300" if LONG else "60"))
PUBLISHERS = int(os.environ.get("SOAK_PUBLISHERS", "20" if LONG else "6"))
ROOMS = 5
SECOND_ROOM_SHARE = 0.3  # subscribers on two rooms (one socket, two topics)
SOCKETS_PER_USER = 15
PUBLISH_INTERVAL = 0.5  # seconds between two messages of one publisher, on average
ALIVE_SECONDS = 12  # a beat every 2 s; a killed process is reaped within 12 + 4 s
BEAT = ALIVE_SECONDS / 6
PREFIX = "soak:"
PASSWORD = "soak-pass-123"
# The faulty part is cut into slots; each slot is quiet or has one fault.
SLOT_SECONDS = 12 if SOAK_SECONDS < 100 else 20
FAULTS = ("sigkill", "redis restart", "db cut", "sigterm")
CYCLE = ("quiet", *FAULTS)
PHASES = (*CYCLE, "drain")
DRAIN_SECONDS = 45  # at most, for publishers to flush and subscribers to catch up
DEADLINE = SOAK_SECONDS + 180  # the whole test, setup and checks included
# Close codes that mean the harness or the server misbehaved (PROTOCOL.md).
BAD_CLOSES = {1011, 4000, 4003, 4009, 4029, 4401, 4429}

pytestmark = pytest.mark.redis


# Bookkeeping -----------------------------------------------------------------


class Clock:
    """Which phase a moment (time.time()) belongs to."""

    def __init__(self):
        self.starts: list[float] = []
        self.names: list[str] = []

    def enter(self, name: str) -> None:
        self.starts.append(time.time())
        self.names.append(name)

    def phase(self, moment: float | None = None) -> str:
        moment = time.time() if moment is None else moment
        index = bisect.bisect_right(self.starts, moment) - 1
        return self.names[max(index, 0)] if self.names else "quiet"

    def durations(self, end: float) -> Counter:
        spans = Counter()
        for (start, name), stop in zip(
            zip(self.starts, self.names, strict=True), [*self.starts[1:], end], strict=True
        ):
            spans[name] += stop - start
        return spans


class Stats:
    """Counters per phase, and the first few problems in words."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.by_phase: dict[str, Counter] = defaultdict(Counter)
        self.problems: list[str] = []
        self.problem_count = 0
        self.drift: dict[str, list[int]] = defaultdict(list)

    def count(self, what: str, n: int = 1, *, phase: str | None = None) -> None:
        self.by_phase[phase or self.clock.phase()][what] += n

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < 40:
            self.problems.append(f"[{self.clock.phase()}] {text}")

    def total(self, what: str) -> int:
        return sum(counter[what] for counter in self.by_phase.values())


@dataclass
class Track:
    """One subscriber's view of one topic, over all its connections."""

    topic: str
    first: int | None = None  # the offset of its first `subscribed`
    last: int | None = None  # the highest offset seen: `since` on a resubscribe
    seen: set = field(default_factory=set)
    expected: int | None = None  # the next offset in the current subscription
    pending: str | None = None  # the ref of a subscribe awaiting its answer
    since: int | None = None  # the `since` of that subscribe
    # The current subscription, for the report of a problem in it.
    started: str = ""  # how and where it started
    subscribed_at: float = 0.0
    recent: deque = field(default_factory=lambda: deque(maxlen=4))  # its last offsets

    def describe(self) -> str:
        return (
            f"subscription {self.started}, {time.monotonic() - self.subscribed_at:.2f} s old, "
            f"last offsets {list(self.recent)}"
        )


class LiveState(NamedTuple):
    """What Redis holds of the live sockets (summed over every process's keys)."""

    registry: int  # entries of the `conns:<server>` hashes
    presence: int  # entries of the `presence:<topic>` hashes
    places: int  # members of the `presence-of:<server>` sets
    caps: int  # the counts of the `caps:<server>` hashes (sockets per user)

    def __str__(self) -> str:
        return ", ".join(f"{name} {value}" for name, value in self._asdict().items())


@dataclass
class Message:
    id: str
    topic: str
    sends: int = 0
    last_sent: float = 0.0  # time.time() of the last send
    # Each send and how it ended, for the report of a message stored other than once.
    history: list[str] = field(default_factory=list)


# Clients ---------------------------------------------------------------------


class Client:
    """A socket that comes back: reconnects, resubscribes with `since`, checks its streams."""

    def __init__(self, soak: "Soak", name: str, session: HttpSession, home: int, topics):
        self.soak = soak
        self.name = name
        self.session = session
        self.server_index = home
        self.tracks = {topic: Track(topic) for topic in topics}
        self.ws: websockets.ClientConnection | None = None
        self.open = False  # welcomed and not closed: what Redis should list
        self.ending: str | None = None  # "clean" or "abort" when the churn closes it
        self.connection_id: str | None = None  # the server's name of the current socket
        self.refs = itertools.count()
        self.tasks: set[asyncio.Task] = set()

    @property
    def stats(self) -> Stats:
        return self.soak.stats

    def caught_up(self, finals: dict[str, int]) -> bool:
        return self.open and all(
            track.expected is not None and track.last == finals[track.topic]
            for track in self.tracks.values()
        )

    # The life of the client: connect, serve, come back ----------------------

    async def run(self) -> None:
        failures = 0
        while not self.soak.closing:
            server = self.soak.servers[self.server_index]
            try:
                ws = await ws_connect(
                    server, self.session, open_timeout=5, close_timeout=2, ping_interval=None
                )
            except websockets.InvalidStatus as exc:
                status = exc.response.status_code
                self.stats.count("refused")
                if status != 503:
                    self.stats.problem(f"{self.name}: handshake refused with HTTP {status}")
                failures += 1
            except (OSError, TimeoutError, websockets.WebSocketException):
                self.stats.count("refused")  # the process is down or restarting
                failures += 1
            else:
                code = await self.serve(ws)
                ending, self.ending = self.ending, None
                if self.soak.closing:
                    return
                if ending is not None:
                    self.stats.count("churned")
                    self.server_index = random.randrange(2)
                    await asyncio.sleep(random.uniform(0, 0.3))
                    continue
                self.stats.count(f"closed {code}")
                if code in BAD_CLOSES:
                    self.stats.problem(f"{self.name}: closed by the server with {code}")
                if code == 4012:
                    # PROTOCOL.md: a random 0 to 5 s (shortened here), to the other process.
                    self.server_index = 1 - self.server_index
                    await asyncio.sleep(random.uniform(0, 2))
                    continue
                failures = 1
            self.server_index = 1 - self.server_index
            # Full jitter, capped low: the harness wants to be back within a phase.
            await asyncio.sleep(random.uniform(0, min(2.0, 0.2 * 2**failures)))

    async def serve(self, ws) -> int:
        """One connection, until it closes; its close code (1006 when none came)."""
        self.ws = ws
        worker = None
        try:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if welcome.get("type") != "welcome":
                self.stats.problem(f"{self.name}: first frame {welcome}")
            self.connection_id = welcome.get("connection_id")
            self.open = True
            for track in self.tracks.values():
                await self.subscribe(ws, track)
            worker = self.start_worker(ws)
            async for raw in ws:
                self.on_frame(ws, json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        except TimeoutError:
            self.stats.problem(f"{self.name}: no welcome within 10 s")
            ws.transport.abort()
        except Exception as exc:  # a frame the checks could not read: say so, carry on
            self.stats.problem(f"{self.name}: {exc!r}")
            ws.transport.abort()
        finally:
            self.open = False
            if worker is not None:
                worker.cancel()
            self.connection_ended()
            for task in list(self.tasks):
                task.cancel()
            for track in self.tracks.values():
                track.expected = track.pending = None
            if ws.close_code is None:
                ws.transport.abort()
        return ws.close_code or 1006

    def start_worker(self, ws) -> asyncio.Task | None:
        return None

    def connection_ended(self) -> None:
        pass

    def end(self, how: str) -> None:
        """The churn: close this socket cleanly or abort it (it comes back by itself)."""
        ws = self.ws
        if ws is None or not self.open or self.ending is not None:
            return
        self.ending = how
        if how == "abort":
            ws.transport.abort()
        else:
            self.background(ws.close())

    def background(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # Subscriptions and the stream checks ------------------------------------

    async def subscribe(self, ws, track: Track) -> None:
        ref = f"s{next(self.refs)}"
        frame = {"type": "subscribe", "topic": track.topic, "ref": ref}
        # Never subscribed: a fresh subscription; else recover from the last offset seen.
        if track.first is not None:
            frame["since"] = track.last
        track.pending, track.since = ref, frame.get("since")
        await ws.send(json.dumps(frame))

    async def subscribe_later(self, ws, track: Track, ref: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.ws is ws and self.open and track.pending == ref:
            try:
                await self.subscribe(ws, track)
            except websockets.ConnectionClosed:
                pass

    def on_frame(self, ws, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "event":
            self.on_event(frame)
        elif kind == "subscribed":
            self.on_subscribed(frame)
        elif kind == "error":
            self.on_error(ws, frame)
        elif kind == "ack":
            self.on_ack(frame)
        elif kind not in ("presence_state", "presence_diff", "pong"):
            self.stats.problem(f"{self.name}: unexpected frame {frame}")

    def on_subscribed(self, frame: dict) -> None:
        track = self.tracks.get(frame.get("topic"))
        if track is None or track.pending is None or frame.get("ref") != track.pending:
            self.stats.problem(f"{self.name}: unexpected {frame}")
            return
        track.pending = None
        track.recent.clear()
        track.subscribed_at = time.monotonic()
        track.started = (
            f"{'fresh' if track.since is None else f'since {track.since}'} "
            f"(offset {frame['offset']}) on server {self.server_index} "
            f"connection {self.connection_id}"
        )
        if track.since is None:
            track.first = track.last = frame["offset"]
            track.expected = frame["offset"] + 1
            return
        self.stats.count("recoveries")
        if frame.get("recovered") is True:
            self.stats.count("recovered")
        else:
            self.stats.count("not recovered")
            self.stats.problem(f"{self.name}: since {track.since} answered {frame}")
        if frame["offset"] < track.since:
            self.stats.problem(f"{self.name}: since {track.since} answered {frame}")
        track.expected = track.since + 1

    def on_event(self, frame: dict) -> None:
        self.stats.count("events")
        track, offset = self.tracks.get(frame.get("topic")), frame.get("offset")
        if track is None or track.expected is None or not isinstance(offset, int):
            self.stats.count("out of order")
            self.stats.problem(f"{self.name}: event outside a subscription: {frame}")
            return
        if offset in track.seen:
            self.stats.count("duplicated")
            self.stats.problem(f"{self.name}: {track.topic}#{offset} again; {track.describe()}")
        elif offset != track.expected:
            # A jump (what it skipped is lost, or comes late: out of order again).
            self.stats.count("out of order")
            self.stats.problem(
                f"{self.name}: {track.topic}#{offset}, expected {track.expected}; "
                f"{track.describe()}"
            )
        self.soak.check_content(frame)
        track.recent.append(offset)
        track.seen.add(offset)
        track.expected = max(track.expected, offset + 1)
        track.last = max(track.last, offset)

    def on_error(self, ws, frame: dict) -> None:
        code, ref = frame.get("code"), frame.get("ref")
        if code == "unavailable":
            self.stats.count("unavailable")
        track = next((t for t in self.tracks.values() if ref and t.pending == ref), None)
        if track is not None and code in ("unavailable", "rate_limited"):
            delay = frame.get("retry_after_ms", 1000) / 1000
            self.background(self.subscribe_later(ws, track, ref, delay))
            return
        self.stats.problem(f"{self.name}: {frame}")

    def on_ack(self, frame: dict) -> None:
        self.stats.problem(f"{self.name}: unexpected {frame}")


class Publisher(Client):
    """Publishes to random rooms, one publish in flight, each resent with its id until acked."""

    def __init__(self, soak: "Soak", name: str, session: HttpSession, home: int):
        super().__init__(soak, name, session, home, topics=())
        self.queue: deque[Message] = deque()
        self.inflight: Message | None = None
        self.sent: dict[str, Message] = {}  # ref -> message, for late acks
        self.current_ref: str | None = None
        self.answer: dict | None = None
        self.answered = asyncio.Event()
        self.numbers = itertools.count()
        self.messages: list[Message] = []  # every message made, for the report

    @property
    def done(self) -> bool:
        return not self.queue and self.inflight is None

    async def produce(self) -> None:
        """About one message per PUBLISH_INTERVAL while the soak produces, connected or not."""
        while self.soak.producing:
            await asyncio.sleep(random.uniform(0.5, 1.5) * PUBLISH_INTERVAL)
            if self.soak.producing:
                number = next(self.numbers)
                topic = random.choice(self.soak.topics)
                message = Message(f"{self.soak.run}-{self.name}-{number}", topic)
                self.messages.append(message)
                self.queue.append(message)

    def start_worker(self, ws) -> asyncio.Task:
        return asyncio.get_running_loop().create_task(self.send_loop(ws))

    def connection_ended(self) -> None:
        message = self.inflight
        if message is not None and message.history and self.answer is None:
            message.history.append(f"connection gone at {time.time():.3f}")

    async def send_loop(self, ws) -> None:
        try:
            while True:
                if self.inflight is None:
                    if not self.queue:
                        await asyncio.sleep(0.05)
                        continue
                    self.inflight = self.queue.popleft()
                message = self.inflight
                ref = f"p{next(self.refs)}"
                self.sent[ref] = message
                self.current_ref, self.answer = ref, None
                self.answered.clear()
                message.sends += 1
                message.last_sent = time.time()
                message.history.append(
                    f"sent at {message.last_sent:.3f} on server {self.server_index} "
                    f"connection {self.connection_id}"
                )
                if message.sends > 1:
                    self.stats.count("resent")
                await ws.send(
                    json.dumps(
                        {
                            "type": "publish",
                            "topic": message.topic,
                            "ref": ref,
                            "id": message.id,
                            "data": {"text": f"soak {message.id}"},
                        }
                    )
                )
                try:
                    await asyncio.wait_for(self.answered.wait(), 10)
                except TimeoutError:
                    self.stats.problem(f"{self.name}: no answer to {message.id} in 10 s")
                    continue  # sent again, same id
                answer = self.answer
                if answer["type"] == "ack":
                    await asyncio.sleep(0.1)  # well below the rate limit when flushing
                elif answer.get("code") in ("unavailable", "rate_limited"):
                    await asyncio.sleep(answer.get("retry_after_ms", 1000) / 1000)
                else:
                    self.stats.problem(f"{self.name}: publish {message.id} refused: {answer}")
                    self.inflight = None
        except websockets.ConnectionClosed:
            pass  # the in-flight message stays in flight: sent again on the next connection
        except Exception as exc:
            self.stats.problem(f"{self.name}: publishing failed: {exc!r}")
            raise

    def answer_with(self, frame: dict) -> None:
        if frame.get("ref") == self.current_ref:
            self.answer = frame
            self.answered.set()

    def on_ack(self, frame: dict) -> None:
        message = self.sent.pop(frame.get("ref"), None)
        if message is None:
            self.stats.problem(f"{self.name}: ack for nothing sent: {frame}")
            return
        message.history.append(f"ack {frame.get('offset')} at {time.time():.3f}")
        self.soak.acked_publish(self, message, frame)
        if self.inflight is message:
            self.inflight = None
        self.answer_with(frame)

    def on_error(self, ws, frame: dict) -> None:
        if frame.get("code") == "unavailable":
            self.stats.count("unavailable")
        elif frame.get("code") != "rate_limited":
            self.stats.problem(f"{self.name}: {frame}")
        self.sent.pop(frame.get("ref"), None)
        self.answer_with(frame)


# The soak --------------------------------------------------------------------


class Soak:
    def __init__(self, servers, redis_server, proxy, topics, clock: Clock):
        self.servers: list[LiveServer] = servers
        self.redis_server = redis_server
        self.proxy = proxy
        self.topics: list[str] = topics
        self.clock = clock
        self.stats = Stats(clock)
        self.run = uuid.uuid4().hex[:6]
        self.subscribers: list[Client] = []
        self.publishers: list[Publisher] = []
        self.closing = False
        self.producing = False
        self.churning = False
        # (topic, client id) -> (offset, publisher's user id): what the server acked.
        self.acked: dict[tuple[str, str], tuple[int, int]] = {}
        # (topic, offset) -> the text delivered there (the same for every socket).
        self.texts: dict[tuple[str, int], str] = {}
        # Messages acked after more than one send (a lost ack, or refused as unavailable).
        self.resent: list[Message] = []
        self.logs: dict[int, list[str]] = defaultdict(list)  # earlier logs of each server
        self.redis = aioredis.Redis.from_url(
            redis_server.url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
        )

    @property
    def clients(self) -> list[Client]:
        return [*self.subscribers, *self.publishers]

    def check_content(self, frame: dict) -> None:
        """Every socket gets the same message at the same offset."""
        key, text = (frame["topic"], frame["offset"]), frame.get("data", {}).get("text")
        if self.texts.setdefault(key, text) != text:
            self.stats.problem(f"{key}: {text!r}, elsewhere {self.texts[key]!r}")

    def acked_publish(self, publisher: Publisher, message: Message, frame: dict) -> None:
        key = (message.topic, message.id)
        offset = frame.get("offset")
        if frame.get("topic") != message.topic or not isinstance(offset, int):
            self.stats.problem(f"{publisher.name}: ack {frame} for {key}")
        if key in self.acked:
            if self.acked[key][0] != offset:
                self.stats.problem(f"{key} acked at {self.acked[key][0]} and at {offset}")
            return
        self.acked[key] = (offset, publisher.session.user_id)
        self.stats.count("acked")
        if message.sends > 1:
            self.resent.append(message)

    # Faults ------------------------------------------------------------------

    async def restart(self, index: int) -> None:
        server = self.servers[index]
        self.logs[index].append(server.log.read_text())
        await asyncio.to_thread(server.start, 30)

    async def sigkill(self, cycle: int) -> None:
        index = cycle % 2
        self.servers[index].signal(signal.SIGKILL)
        await asyncio.to_thread(self.servers[index].wait, 10)
        await asyncio.sleep(3)
        await self.restart(index)

    async def sigterm(self, cycle: int) -> None:
        index = (cycle + 1) % 2
        self.servers[index].signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.servers[index].wait, 15)
        if code != 0:
            self.stats.problem(f"server {index} exited with {code} after SIGTERM")
        await asyncio.sleep(2)
        await self.restart(index)

    async def redis_restart(self, cycle: int) -> None:
        await asyncio.to_thread(self.redis_server.stop)
        await asyncio.sleep(3)
        await asyncio.to_thread(self.redis_server.start)

    async def db_cut(self, cycle: int) -> None:
        self.proxy.cut()
        await asyncio.sleep(4)
        self.proxy.restore()

    async def faults(self) -> None:
        actions = {
            "sigkill": self.sigkill,
            "redis restart": self.redis_restart,
            "db cut": self.db_cut,
            "sigterm": self.sigterm,
        }
        slots = max(len(CYCLE), SOAK_SECONDS // SLOT_SECONDS)
        slot = SOAK_SECONDS / slots
        start = time.monotonic()
        for number in range(slots):
            kind = CYCLE[number % len(CYCLE)]
            await asyncio.sleep(max(0.0, start + number * slot - time.monotonic()))
            if number:
                self.clock.enter(kind)
            if kind == "quiet":
                continue
            await asyncio.sleep(1)
            began = time.monotonic()
            await actions[kind](number // len(CYCLE))
            self.stats.count(f"{kind} seconds", round(time.monotonic() - began))
        await asyncio.sleep(max(0.0, start + SOAK_SECONDS - time.monotonic()))

    # Churn and sampling ------------------------------------------------------

    async def churn(self) -> None:
        per_second = max(2, len(self.clients) // 25)
        while self.churning:
            await asyncio.sleep(1)
            candidates = [c for c in self.clients if c.open and c.ending is None]
            for client in random.sample(candidates, min(per_second, len(candidates))):
                client.end(random.choice(("clean", "abort")))

    async def live_state(self) -> "LiveState":
        """What Redis holds of the live sockets, all processes (dead ones too) together."""
        registry = presence = places = caps = 0
        async for name in self.redis.scan_iter(f"{PREFIX}conns:*"):
            registry += await self.redis.hlen(name)
        async for name in self.redis.scan_iter(f"{PREFIX}presence:*"):
            presence += await self.redis.hlen(name)
        async for name in self.redis.scan_iter(f"{PREFIX}presence-of:*"):
            places += await self.redis.scard(name)
        async for name in self.redis.scan_iter(f"{PREFIX}caps:*"):
            caps += sum(int(count) for count in await self.redis.hvals(name))
        return LiveState(registry, presence, places, caps)

    def believed_state(self) -> "LiveState":
        """What Redis should hold for the sockets the harness has open."""
        sockets = sum(c.open for c in self.clients)
        places = sum(len(c.tracks) for c in self.subscribers if c.open)
        return LiveState(sockets, places, places, sockets)

    async def sample_drift(self) -> None:
        """Every beat: registry size minus the sockets the harness holds open."""
        while self.churning:
            await asyncio.sleep(BEAT)
            believed = sum(c.open for c in self.clients)
            try:
                registry = (await self.live_state()).registry
            except Exception:
                continue  # Redis is down
            self.stats.drift[self.clock.phase()].append(registry - believed)

    # The end -----------------------------------------------------------------

    async def wait_for(self, predicate, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True

    async def settled_live_state(self, seconds: float) -> tuple["LiveState", "LiveState"]:
        """Wait until Redis holds exactly the open sockets: what it held, what it should."""
        deadline = time.monotonic() + seconds
        while True:
            wanted, held = self.believed_state(), await self.live_state()
            if held == wanted or time.monotonic() > deadline:
                return held, wanted
            await asyncio.sleep(0.5)

    def server_logs(self) -> tuple[str, list[Path]]:
        """Every process's log, restarts included, also kept in /tmp for a look afterwards."""
        texts, paths = [], []
        for index, server in enumerate(self.servers):
            text = "\n".join([*self.logs[index], server.log.read_text()])
            path = Path(f"/tmp/realtime-soak-{self.run}-server{index}.log")
            path.write_text(text)
            texts.append(text)
            paths.append(path)
        return "\n".join(texts), paths


LOG_LINE = re.compile(r"^[\d-]+ [\d:,]+ (WARNING|ERROR|CRITICAL) (\S+) (.*)$", re.MULTILINE)


def log_summary(log: str, top: int = 8) -> list[str]:
    """The most frequent warnings and errors, numbers and ids masked."""
    found = Counter(
        f"{level} {logger} " + re.sub(r"[0-9a-f]{32}|\d+(\.\d+)?", "N", message)[:110]
        for level, logger, message in LOG_LINE.findall(log)
    )
    return [f"  {count:5d} {line}" for line, count in found.most_common(top)]


def sign_in(servers, names: list[str]) -> list[HttpSession]:
    with ThreadPoolExecutor(4) as pool:
        return list(
            pool.map(
                lambda pair: HttpSession(servers[pair[0] % 2]).login(pair[1], PASSWORD),
                enumerate(names),
            )
        )


def stored_events(url: str, topics: list[str]) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(
            'SELECT topic, "offset", client_id, publisher_id, created_at FROM realtime_event '
            'WHERE topic = ANY(%s) ORDER BY topic, "offset"',
            [topics],
        ).fetchall()


def final_offsets(url: str, topics: list[str]) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        found = dict(
            connection.execute(
                "SELECT topic, last_offset FROM realtime_topicsequence WHERE topic = ANY(%s)",
                [topics],
            ).fetchall()
        )
    return {topic: found.get(topic, 0) for topic in topics}


@pytest.fixture
def cluster(live_database, require_postgres, private_redis):
    """Two processes on one PostgreSQL (through a TCP proxy) and a private Redis."""
    database = urlsplit(live_database.url)
    proxy = TcpProxy((database.hostname, database.port or 5432))
    through_proxy = live_database.url.replace(
        database.netloc.split("@")[-1], f"127.0.0.1:{proxy.port}"
    )
    servers = [
        LiveServer(
            live_database,
            redis_url=private_redis.url,
            DATABASE_URL=through_proxy,
            REALTIME_REDIS_PREFIX=PREFIX,
            REALTIME_ALIVE_SECONDS=str(ALIVE_SECONDS),
            LOG_FORMAT="plain",  # what the log summary reads
        )
        for _ in range(2)
    ]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda server: server.start(30), servers))
        yield servers, proxy
    finally:
        if proxy.listener is None:
            proxy.restore()  # a failure during the database cut
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda server: server.stop(), servers))
        proxy.close()


async def test_soak_delivery_under_churn_and_faults(live_database, private_redis, cluster):
    servers, proxy = cluster
    clock = Clock()
    async with asyncio.timeout(DEADLINE):
        soak = Soak(servers, private_redis, proxy, [], clock)
        try:
            report = await run_soak(soak, live_database)
        finally:
            soak.churning = soak.producing = False
            soak.closing = True
            for client in soak.clients:
                if client.ws is not None:
                    client.ws.transport.abort()
            await soak.redis.aclose()
    print(report.text, flush=True)
    assert not report.failures, "\n".join(report.failures)


@dataclass
class Report:
    text: str
    failures: list[str]


async def run_soak(soak: Soak, live_database) -> Report:
    stats, clock = soak.stats, soak.clock
    began = time.monotonic()
    total = SUBSCRIBERS + PUBLISHERS
    names = [f"soak{soak.run}u{n}" for n in range(math.ceil(total / SOCKETS_PER_USER))]
    await asyncio.to_thread(live_database.create_users, names, PASSWORD)
    sessions = await asyncio.to_thread(sign_in, soak.servers, names)
    for n in range(ROOMS):
        slug = f"soak-{soak.run}-{n}"
        status, body = await asyncio.to_thread(
            sessions[0].request, "POST", "/api/rooms/", {"slug": slug, "name": slug}
        )
        assert status == 201, body
        soak.topics.append(f"room:{slug}")

    rng = random.Random()
    for n in range(SUBSCRIBERS):
        rooms = [soak.topics[n % ROOMS]]
        if rng.random() < SECOND_ROOM_SHARE:
            rooms.append(soak.topics[(n + 1 + rng.randrange(ROOMS - 1)) % ROOMS])
        session = sessions[n % len(sessions)]
        soak.subscribers.append(Client(soak, f"sub{n}", session, n % 2, rooms))
    for n in range(PUBLISHERS):
        session = sessions[(SUBSCRIBERS + n) % len(sessions)]
        soak.publishers.append(Publisher(soak, f"pub{n}", session, n % 2))

    tasks: list[asyncio.Task] = []
    loop = asyncio.get_running_loop()
    try:
        clock.enter("quiet")
        tasks += [loop.create_task(client.run()) for client in soak.clients]
        subscribed = await soak.wait_for(
            lambda: all(
                all(t.expected is not None for t in c.tracks.values()) for c in soak.subscribers
            ),
            30,
        )
        assert subscribed, "the subscribers did not all subscribe within 30 s"
        setup_seconds = time.monotonic() - began
        # Run: publishers, churn, drift samples, and the faults on schedule.
        soak.producing = soak.churning = True
        producers = [loop.create_task(p.produce()) for p in soak.publishers]
        tasks += producers
        tasks.append(loop.create_task(soak.churn()))
        tasks.append(loop.create_task(soak.sample_drift()))
        await soak.faults()

        # Drain: no faults, no churn, no new messages; what was queued is sent.
        clock.enter("drain")
        soak.producing = soak.churning = False
        drain_began = time.monotonic()
        flushed = await soak.wait_for(lambda: all(p.done for p in soak.publishers), DRAIN_SECONDS)
        url = live_database.url
        finals = await asyncio.to_thread(final_offsets, url, soak.topics)
        caught_up = await soak.wait_for(
            lambda: all(c.caught_up(finals) for c in soak.subscribers),
            max(5.0, DRAIN_SECONDS - (time.monotonic() - drain_began)),
        )
        drain_seconds = time.monotonic() - drain_began
        # Live state with every socket open and still: exactly the open sockets.
        running_state, running_wanted = await soak.settled_live_state(4 * BEAT)
        clock.enter("end")
        # Every socket goes: half cleanly, half aborted.
        soak.closing = True
        closing = []
        for n, client in enumerate(soak.clients):
            if client.ws is not None and client.open:
                if n % 2:
                    client.ws.transport.abort()
                else:
                    closing.append(client.ws.close())
        await asyncio.gather(*closing, return_exceptions=True)
        await asyncio.wait(tasks, timeout=10)
        closed_at = time.monotonic()
        ghosts = await soak.live_state()
        while any(ghosts) and time.monotonic() - closed_at < 5 * BEAT:
            await asyncio.sleep(0.5)
            ghosts = await soak.live_state()
        ghost_seconds = time.monotonic() - closed_at
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # The database: every acked publish stored exactly once, at its acked offset.
    rows = await asyncio.to_thread(stored_events, live_database.url, soak.topics)
    failures: list[str] = []
    stored = defaultdict(list)
    created = {}
    mismatched = 0
    for topic, offset, client_id, publisher_id, created_at in rows:
        stored[(topic, client_id, publisher_id)].append(offset)
        created[(topic, offset)] = created_at.timestamp()
        if soak.texts.get((topic, offset), f"soak {client_id}") != f"soak {client_id}":
            mismatched += 1
            if mismatched <= 5:
                delivered = soak.texts[(topic, offset)]
                failures.append(f"{topic}#{offset} delivered {delivered!r}, stored {client_id}")
    if mismatched:
        failures.append(f"{mismatched} offsets delivered with another message than stored")
    stored_wrong = 0
    messages = {(m.topic, m.id): m for p in soak.publishers for m in p.messages}
    for (topic, client_id), (offset, user_id) in soak.acked.items():
        offsets = stored.get((topic, client_id, user_id), [])
        if offsets != [offset]:
            stored_wrong += 1
            if stored_wrong <= 10:
                stored_at = ", ".join(f"{o} at {created[(topic, o)]:.3f}" for o in offsets)
                history = "; ".join(messages[(topic, client_id)].history)
                failures.append(
                    f"{topic} id {client_id} acked at {offset}, stored {stored_at}; {history}"
                )
    # Resends answered with the first copy's offset: stored before their last send.
    deduplicated = sum(
        created.get((m.topic, soak.acked[(m.topic, m.id)][0]), 0) < m.last_sent for m in soak.resent
    )
    unacked = [key for key in stored if (key[0], key[1]) not in soak.acked]
    for topic in soak.topics:
        offsets = [offset for t, offset, *_ in rows if t == topic]
        if offsets != list(range(1, finals[topic] + 1)):
            failures.append(f"{topic}: stored offsets are not 1..{finals[topic]}")

    # Lost: every offset of each room from a subscriber's first subscription on.
    for client in soak.subscribers:
        for track in client.tracks.values():
            if track.first is None:
                failures.append(f"{client.name} never subscribed to {track.topic}")
                continue
            for offset in range(track.first + 1, finals[track.topic] + 1):
                if offset not in track.seen:
                    phase = clock.phase(created.get((track.topic, offset)))
                    stats.count("lost", phase=phase)
                    if stats.total("lost") <= 10:
                        failures.append(f"{client.name} lost {track.topic}#{offset} ({phase})")

    for what in ("duplicated", "out of order", "not recovered"):
        if stats.total(what):
            failures.append(f"{stats.total(what)} {what}")
    if stats.total("lost"):
        failures.append(f"{stats.total('lost')} lost")
    if stored_wrong:
        failures.append(f"{stored_wrong} acked publishes not stored exactly once at their offset")
    if unacked:
        failures.append(f"{len(unacked)} stored publishes never acked: {unacked[:5]}")
    if not flushed:
        pending = sum(len(p.queue) + (p.inflight is not None) for p in soak.publishers)
        failures.append(f"{pending} publishes still unacked after the drain")
    if not caught_up:
        behind = [c.name for c in soak.subscribers if not c.caught_up(finals)]
        failures.append(f"{len(behind)} subscribers not caught up after the drain: {behind[:10]}")
    if running_state != running_wanted:
        failures.append(
            f"live state with every socket open: Redis holds {running_state}, "
            f"the open sockets want {running_wanted}"
        )
    if any(ghosts):
        failures.append(f"ghosts {ghost_seconds:.0f} s after the last socket closed: {ghosts}")
    failures += [f"problem: {p}" for p in stats.problems]
    if stats.problem_count > len(stats.problems):
        failures.append(f"... {stats.problem_count - len(stats.problems)} more problems")

    log, log_paths = soak.server_logs()
    text = report_text(
        soak,
        finals=finals,
        setup_seconds=setup_seconds,
        drain_seconds=drain_seconds,
        running=(running_state, running_wanted),
        ghosts=ghosts,
        ghost_seconds=ghost_seconds,
        log=log,
        log_paths=log_paths,
        deduplicated=deduplicated,
    )
    return Report(text, failures)


def report_text(
    soak,
    *,
    finals,
    setup_seconds,
    drain_seconds,
    running,
    ghosts,
    ghost_seconds,
    log,
    log_paths,
    deduplicated,
):
    stats, clock = soak.stats, soak.clock
    spans = clock.durations(clock.starts[-1])
    columns = (
        ("phase", 13),
        ("s", 4),
        ("acked", 6),
        ("events", 8),
        ("lost", 5),
        ("dup", 4),
        ("ooo", 4),
        ("resubs", 7),
        ("recov", 6),
        ("refused", 8),
        ("unavail", 8),
        ("4012", 5),
        ("1006", 5),
        ("drift", 7),
    )
    lines = [
        "",
        f"SOAK {SOAK_SECONDS} s: {SUBSCRIBERS} subscribers, {PUBLISHERS} publishers, "
        f"{ROOMS} rooms, 2 processes; setup {setup_seconds:.0f} s, drain {drain_seconds:.0f} s",
        " ".join(
            name.rjust(width) if n else name.ljust(width) for n, (name, width) in enumerate(columns)
        ),
    ]
    for phase in PHASES:
        c = stats.by_phase.get(phase, Counter())
        drift = stats.drift.get(phase, [])
        cells = (
            phase,
            f"{spans.get(phase, 0):.0f}",
            c["acked"],
            c["events"],
            c["lost"],
            c["duplicated"],
            c["out of order"],
            c["recoveries"],
            c["recovered"],
            c["refused"],
            c["unavailable"],
            c["closed 4012"],
            c["closed 1006"],
            f"{min(drift)}..{max(drift)}" if drift else "-",
        )
        lines.append(
            " ".join(
                str(cell).rjust(width) if n else str(cell).ljust(width)
                for n, (cell, (_, width)) in enumerate(zip(cells, columns, strict=True))
            )
        )
    other = Counter()
    for counter in stats.by_phase.values():
        other.update(counter)
    lines += [
        f"totals: acked {stats.total('acked')}, events {stats.total('events')}, "
        f"churned {other['churned']}, sends repeated {other['resent']}, acked after a resend "
        f"{len(soak.resent)} (answered by the server's dedup: {deduplicated}), "
        f"closes {dict(sorted((k, v) for k, v in other.items() if k.startswith('closed ')))}",
        f"final offsets: {sum(finals.values())} events in {len(finals)} rooms "
        f"({', '.join(str(v) for v in finals.values())})",
        f"live state, all sockets open and still: Redis {running[0]}; for the open sockets "
        f"{running[1]}",
        f"ghosts {ghost_seconds:.1f} s after the last socket closed: {ghosts}",
        f"server logs: {log.count('Traceback')} tracebacks, "
        f"{log.count(' ERROR ')} ERROR lines, {log.count(' WARNING ')} WARNING lines "
        f"({', '.join(map(str, log_paths))}); most frequent:",
        *log_summary(log),
        f"problems: {stats.problem_count}",
        *(f"  {problem}" for problem in stats.problems[:10]),
    ]
    return "\n".join(lines)
