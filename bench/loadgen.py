"""
A load-generator worker: one process, one asyncio loop, many subscribers.

The orchestrator (bench/run.py) drives each worker through a pipe with small
commands (connect, subscribe, collect, close) and gets back counters and the
latency samples. Every subscriber checks its own stream: each event's offset
must be the previous one plus one (else it counts as out of order), an offset
seen twice is a duplicate, and the unique offsets received are compared with
the number published (loss).
"""

import asyncio
import os
import signal
import time
from array import array

import orjson

from bench import traffic
from bench.wsclient import OP_TEXT, connect

SUBPROTOCOL = "realtime.v1"


class Subscriber:
    __slots__ = (
        "base",
        "close_code",
        "complete",
        "duplicates",
        "errors",
        "last",
        "other_frames",
        "out_of_order",
        "received",
        "seen",
        "subscribed",
        "unique",
        "welcome",
        "worker",
        "ws",
    )

    def __init__(self, worker):
        self.worker = worker
        self.ws = None
        loop = asyncio.get_running_loop()
        self.welcome = loop.create_future()
        self.subscribed = loop.create_future()
        self.base = None
        self.last = None
        self.seen = None
        self.unique = self.received = self.duplicates = self.out_of_order = 0
        self.other_frames = 0
        self.errors = 0
        self.close_code = None
        self.complete = False

    def on_message(self, opcode, payload):
        if opcode != OP_TEXT:
            self.other_frames += 1
            return
        worker = self.worker
        worker.frames += 1
        worker.last_frame_at = time.time()
        frame = orjson.loads(payload)
        kind = frame.get("type")
        if kind == "event":
            now = time.time()
            self.received += 1
            offset = frame["offset"]
            if self.last is not None and offset != self.last + 1:
                self.out_of_order += 1
            self.last = offset
            index = offset - self.base if self.base is not None else -1
            if 0 < index < len(self.seen):
                if self.seen[index]:
                    self.duplicates += 1
                else:
                    self.seen[index] = 1
                    self.unique += 1
                    text = frame["data"]["text"]
                    # "bench <sent wall-clock time> <sequence>"
                    worker.latencies.append(now - float(text.split(" ", 2)[1]))
                    worker.last_event_at = now
                    if self.unique == worker.expected and not self.complete:
                        self.complete = True
                        worker.completed += 1
                        if worker.completed == len(worker.subscribers) and worker.all_done:
                            if not worker.all_done.done():
                                worker.all_done.set_result(None)
            else:
                worker.stray_events += 1
        elif kind == "welcome":
            if not self.welcome.done():
                self.welcome.set_result(frame)
        elif kind == "subscribed":
            self.base = frame["offset"] or 0
            self.last = self.base
            if not self.subscribed.done():
                self.subscribed.set_result(frame)
        elif kind == "error":
            self.errors += 1
            worker.error_samples.append(frame)
            if not self.subscribed.done() and frame.get("ref") == "sub":
                self.subscribed.set_exception(RuntimeError(str(frame)))
        else:
            self.other_frames += 1

    def on_close(self, code):
        self.close_code = code
        self.worker.closes[code] = self.worker.closes.get(code, 0) + 1
        for future, what in ((self.welcome, "welcome"), (self.subscribed, "subscribed")):
            if not future.done():
                future.set_exception(RuntimeError(f"closed before {what} ({code})"))
                future.exception()  # reported by whoever waits for it, not as a warning


class Worker:
    def __init__(self, conn):
        self.conn = conn
        self.subscribers: list[Subscriber] = []
        self.followers: list[traffic.Follower] = []
        self.greeted: list[traffic.Greeted] = []
        self.reset_counters()

    def reset_counters(self):
        self.latencies = array("d")
        self.expected = 0
        self.completed = 0
        self.frames = 0
        self.stray_events = 0
        self.error_samples = []
        self.closes = {}
        self.all_done = None
        self.last_frame_at = 0.0
        self.last_event_at = 0.0

    # Commands -------------------------------------------------------------------

    async def cmd_connect(self, targets, concurrency, wait_s, retries=3):
        """targets: [(port, cookie)]; open them all, wait for every `welcome`."""
        started = time.time()
        semaphore = asyncio.Semaphore(concurrency)
        failures = []
        handshake_times = array("d")

        retried = 0

        async def open_one(port, cookie):
            nonlocal retried
            for attempt in range(retries + 1):
                error = await try_one(port, cookie, last=attempt == retries)
                if error is None:
                    return
                # A refused or reset handshake (a full listen queue): retry like a
                # browser would, after a backoff; counted apart from failures.
                retried += 1
                await asyncio.sleep(0.5 * (attempt + 1))

        async def try_one(port, cookie, last):
            async with semaphore:
                subscriber = Subscriber(self)
                t0 = time.perf_counter()
                try:
                    subscriber.ws = await connect(
                        "127.0.0.1",
                        port,
                        origin=f"http://127.0.0.1:{port}",
                        cookie=cookie,
                        subprotocol=SUBPROTOCOL,
                        on_message=subscriber.on_message,
                        on_close=subscriber.on_close,
                        wait_s=wait_s,
                    )
                    welcome = await asyncio.wait_for(subscriber.welcome, wait_s)
                    if welcome.get("user") is None:
                        raise RuntimeError("welcome says anonymous: the session was not accepted")
                    handshake_times.append(time.perf_counter() - t0)
                    self.subscribers.append(subscriber)
                    return None
                except Exception as error:
                    if subscriber.ws is not None:
                        subscriber.ws.abort()
                    if last or not isinstance(error, ConnectionError):
                        failures.append(f"{type(error).__name__}: {error}"[:200])
                        return None
                    return error

        await asyncio.gather(*(open_one(port, cookie) for port, cookie in targets))
        return {
            "started": started,
            "done": time.time(),
            "ok": len(self.subscribers),
            "failed": len(failures),
            "retried": retried,
            "failures": failures[:5],
            "handshake_times": handshake_times.tobytes(),
        }

    async def cmd_subscribe(self, topic, expected, wait_s):
        """Subscribe every connection to `topic`, wait for every `subscribed`."""
        self.reset_counters()
        self.expected = expected
        self.all_done = asyncio.get_running_loop().create_future()
        started = time.time()
        frame = orjson.dumps({"type": "subscribe", "topic": topic, "ref": "sub"})
        for subscriber in self.subscribers:
            subscriber.seen = bytearray(expected + 1)
            subscriber.ws.send_text(frame)
        results = await asyncio.wait_for(
            asyncio.gather(*(s.subscribed for s in self.subscribers), return_exceptions=True),
            wait_s,
        )
        failures = [str(r)[:200] for r in results if isinstance(r, BaseException)]
        return {
            "started": started,
            "done": time.time(),
            "failed": len(failures),
            "failures": failures[:5],
        }

    async def cmd_quiet(self, quiet_for, wait_s):
        """Wait until no frame arrived for `quiet_for` seconds (presence traffic settles)."""
        deadline = time.time() + wait_s
        while time.time() < deadline:
            if time.time() - self.last_frame_at >= quiet_for:
                break
            await asyncio.sleep(0.05)
        frames, self.frames = self.frames, 0
        return {"frames": frames, "quiet": time.time() - self.last_frame_at >= quiet_for}

    async def cmd_collect(self, deadline):
        """Wait until every subscriber has every event, or the deadline; report."""
        if self.subscribers and self.completed < len(self.subscribers):
            try:
                await asyncio.wait_for(self.all_done, max(0.0, deadline - time.time()))
            except TimeoutError:
                pass
        subs = self.subscribers
        return {
            "subscribers": len(subs),
            "complete": self.completed,
            "received": sum(s.received for s in subs),
            "unique": sum(s.unique for s in subs),
            "duplicates": sum(s.duplicates for s in subs),
            "out_of_order": sum(s.out_of_order for s in subs),
            "stray_events": self.stray_events,
            "errors": sum(s.errors for s in subs),
            "error_samples": self.error_samples[:3],
            "closes": {str(k): v for k, v in self.closes.items()},
            "last_event_at": self.last_event_at,
            "latencies": self.latencies.tobytes(),
        }

    async def cmd_close(self, wait_s):
        for subscriber in self.subscribers:
            subscriber.ws.close()
        closed = [s.ws.closed for s in self.subscribers]
        if closed:
            await asyncio.wait(closed, timeout=wait_s)
        for subscriber in self.subscribers:
            subscriber.ws.abort()
        count = len(self.subscribers)
        self.subscribers = []
        return {"closed": count}

    # Commands of the issue 12 scenarios (bench/traffic.py) -------------------------

    async def cmd_publish(self, targets, rate, duration, window, wait_s):
        """Publisher sockets [(port, cookie, [topics])] publish for `duration` s."""
        return await traffic.publish_run(targets, rate, duration, window, wait_s)

    async def cmd_handshake(self, targets, rate, concurrency, wait_s):
        """Open authenticated sockets [(port, cookie)], timed to `welcome`; kept open."""
        return await traffic.handshakes(targets, rate, concurrency, wait_s, self.greeted)

    async def cmd_follow(self, targets, reconnect, concurrency, wait_s):
        """Followers [(port, cookie, [topics])]: connect, subscribe, wait for `subscribed`."""
        self.closes = {}
        semaphore = asyncio.Semaphore(concurrency)
        failures = []

        async def one(port, cookie, topics):
            follower = traffic.Follower(self, port, cookie, topics, reconnect)
            async with semaphore:
                try:
                    await follower.open(wait_s)
                    await asyncio.wait_for(asyncio.shield(follower.ready), wait_s)
                    self.followers.append(follower)
                except Exception as error:
                    follower.stopping = True
                    if follower.ws is not None:
                        follower.ws.abort()
                    failures.append(f"{type(error).__name__}: {error}"[:200])

        started = time.time()
        await asyncio.gather(*(one(*target) for target in targets))
        return {
            "started": started,
            "done": time.time(),
            "ok": len(self.followers),
            "failed": len(failures),
            "failures": failures[:5],
        }

    async def cmd_follow_status(self):
        """How many followers were closed, are back, resubscribed and recovered."""
        hit = [f for f in self.followers if f.closed_at is not None]
        return {
            "followers": len(self.followers),
            "closed": len(hit),
            "back": sum(f.back_at is not None for f in hit),
            "resubscribed": sum(f.resubscribed_at is not None for f in hit),
            "recovered": sum(f.recovered_at is not None for f in hit),
        }

    async def cmd_follow_report(self, expected, deadline):
        """Wait until every follower has every offset up to `expected` ({topic: offset})
        or the deadline; report losses (union per topic), duplicates, gaps, times."""
        # Polled: the followers' state changes in their frame callbacks.
        while time.time() < deadline:
            if all(f.has_all(expected) for f in self.followers):
                break
            await asyncio.sleep(0.1)
        lost: dict[str, set] = {}
        lost_deliveries = 0
        for follower in self.followers:
            for topic, offsets in follower.missing(expected).items():
                lost.setdefault(topic, set()).update(offsets)
                lost_deliveries += len(offsets)
        hit = [f for f in self.followers if f.closed_at is not None]
        states = [s for f in self.followers for s in f.state.values()]
        return {
            "followers": len(self.followers),
            "lost": {t: sorted(o) for t, o in lost.items()},
            "lost_deliveries": lost_deliveries,
            "received": sum(len(s.seen) for s in states),
            "duplicates": sum(s.duplicates for s in states),
            "gaps": sum(s.gaps for s in states),
            "errors": sum(f.errors for f in self.followers),
            "error_samples": [e for f in self.followers for e in f.error_samples][:3],
            "closes": {str(k): v for k, v in self.closes.items()},
            "closed": len(hit),
            "not_recovered": sum(not f.recovered for f in hit),
            "attempts": sum(f.attempts for f in hit),
            "failed_attempts": sum(f.failed_attempts for f in hit),
            "closed_at": [f.closed_at for f in hit],
            "back_at": [f.back_at for f in hit],
            "resubscribed_at": [f.resubscribed_at for f in hit],
            "recovered_at": [f.recovered_at for f in hit],
        }

    async def cmd_release(self, wait_s):
        """Close every follower and handshake socket (no reconnecting)."""
        sockets = [f.ws for f in self.followers] + [g.ws for g in self.greeted]
        for follower in self.followers:
            follower.stopping = True
        sockets = [ws for ws in sockets if ws is not None]
        for ws in sockets:
            ws.close()
        if sockets:
            await asyncio.wait([ws.closed for ws in sockets], timeout=wait_s)
        for ws in sockets:
            ws.abort()
        self.followers, self.greeted = [], []
        return {"closed": len(sockets)}

    # Loop -----------------------------------------------------------------------

    async def serve(self):
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()
        loop.add_reader(self.conn.fileno(), lambda: inbox.put_nowait(self.conn.recv()))
        while True:
            name, kwargs = await inbox.get()
            if name == "exit":
                return
            try:
                result = await getattr(self, "cmd_" + name)(**kwargs)
                self.conn.send(("ok", result))
            except Exception as error:
                self.conn.send(("error", f"{type(error).__name__}: {error}"))


def worker_main(conn):
    """Entry point of a worker process."""
    # Ctrl-C is the orchestrator's to handle; it ends workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(0)
        asyncio.run(Worker(conn).serve())
    finally:
        conn.close()
