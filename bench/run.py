"""
The fan-out benchmark of issue 6: `.venv/bin/python -m bench --scenario all`
(or `make bench`). See docs/performance.md for what it measures and how.

It starts the server as deployed (`manage.py serve`: daphne, DJANGO_DEBUG=0,
PostgreSQL) in a fresh database of its own, creates users, sessions and rooms,
opens authenticated WebSocket connections through the real handshake from
several load-generator processes, subscribes them to a room, publishes through
the protocol from one publisher socket and prints a table. Every server, worker
and database it creates is removed at the end, also on Ctrl-C or a time-out.

The scenarios of issue 12 (publish throughput, handshake rate, reconnect
storm: `--scenario issue12`) are in bench/issue12.py; their sockets in
bench/traffic.py.
"""

import argparse
import asyncio
import fnmatch
import json
import multiprocessing
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from array import array
from dataclasses import asdict, dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

import orjson

from bench import issue12
from bench.loadgen import SUBPROTOCOL, worker_main
from bench.wsclient import OP_TEXT, connect

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") / 1024
PASSWORD = "bench-password-" + "x" * 12


# Scenarios --------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    layer: str  # memory | pubsub | core
    processes: int
    kind: str  # fanout | idle | publish | handshake | storm (the last three: bench/issue12.py)
    clients: int
    messages: int = 0
    rate: float | None = None  # messages/s; None: unthrottled (a window of unacked publishes)
    label: str = ""  # the name, when not derived from the fields (issue 12)
    storage: str = "pg"  # pg | sqlite
    rooms: int = 1
    duration: float = 0.0
    warm: bool = False  # handshakes: the same users again, their sessions in the cache

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        base = f"{self.layer}-{self.processes}p"
        if self.kind == "idle":
            return f"{base}-idle{self.clients}"
        rate = f"{self.rate:g}ps" if self.rate else "max"
        return f"{base}-n{self.clients}-{rate}"


def scenarios(args) -> list[Scenario]:
    out = []
    deployments = [("memory", 1), ("pubsub", 1), ("pubsub", 2), ("core", 1), ("core", 2)]
    for layer, processes in deployments:
        out.append(Scenario(layer, processes, "idle", args.idle))
        for n in (100, 1000):
            out.append(Scenario(layer, processes, "fanout", n, args.messages_rated, args.rate))
            out.append(Scenario(layer, processes, "fanout", n, args.messages_max, None))
    return out + issue12.issue12_scenarios(args)


PRESETS = {
    # The issue's scenarios on the three deployments, and the core layer for comparison.
    "all": [
        "memory-1p-*",
        "pubsub-1p-*",
        "pubsub-2p-*",
        "core-1p-n1000-max",
        "core-2p-n1000-max",
        "core-1p-n100-200ps",
    ],
    "quick": ["memory-1p-n100-*", "memory-1p-n1000-max"],
    # Issue 12: publish throughput, handshake rate, reconnect storm (bench/issue12.py).
    "issue12": ["pg-1p-publish-*", "sqlite-1p-publish-*", "pg-1p-handshake-*", "pubsub-2p-storm"],
}


def select(args) -> list[Scenario]:
    patterns = []
    for item in args.scenario.split(","):
        patterns += PRESETS.get(item.strip(), [item.strip()])
    if args.scenario == "none":  # only the --profile runs
        return []
    chosen = [s for s in scenarios(args) if any(fnmatch.fnmatch(s.name, p) for p in patterns)]
    if not chosen and not (args.profile and args.scenario == "none"):
        names = "\n  ".join(s.name for s in scenarios(args))
        raise SystemExit(
            f"no scenario matches {args.scenario!r}; presets: {', '.join(PRESETS)}; "
            f"names:\n  {names}"
        )
    return chosen


# /proc readings ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def rss_kib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except FileNotFoundError:
        return 0.0


def postgres_cpu() -> float:
    """CPU of every `postgres` process, and of the backends that already exited
    (the postmaster's cutime + cstime). Whole server: other databases included."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        if not head.endswith("(postgres"):
            continue
        fields = rest.split()
        total += sum(int(v) for v in fields[11:15])
    return total / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies over all cores."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def redis_cpu(redis_url: str | None) -> float | None:
    if not redis_url:
        return None
    try:
        import redis

        info = redis.Redis.from_url(redis_url, socket_timeout=2).info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    except Exception:
        return None


def machine() -> dict:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "realtime", "config"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        commit, dirty = "unknown", []
    return {
        # The server code measured: a commit, plus uncommitted changes if any.
        "commit": commit,
        "server_code_changes": [line[3:] for line in dirty if line.strip()],
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "kernel": os.uname().release,
    }


# Database, fixtures, servers ---------------------------------------------------------


class BenchDatabase:
    """A fresh PostgreSQL database, migrated, with users, sessions and rooms."""

    def __init__(self, base_url: str, workdir: Path, query: str = ""):
        self.base_url = base_url.rstrip("/")
        self.name = f"realtime_bench_{uuid.uuid4().hex[:8]}"
        self.url = f"{self.base_url}/{self.name}"
        self.server_url = self.url + (f"?{query}" if query else "")
        self.workdir = workdir
        self.secret = secrets.token_urlsafe(50)
        self.created = False

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"{self.base_url}/postgres", autocommit=True) as connection:
            connection.execute(sql)

    def env(self, *, server: bool = False, **extra) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "REALTIME_", "PYTEST"))
            and k not in ("REDIS_URL", "DATABASE_URL", "REDIS_CHANNEL_LAYER")
        }
        env.update(
            DATABASE_URL=self.server_url if server else self.url,
            DJANGO_SECRET_KEY=self.secret,
            DJANGO_DEBUG="0",
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            PYTHONUNBUFFERED="1",
        )
        env.update({k: str(v) for k, v in extra.items() if v is not None})
        return env

    def create(self, users: int, rooms: list[str]) -> dict:
        self.admin(f"CREATE DATABASE {self.name}")
        self.created = True
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=self.env(),
            check=True,
            timeout=300,
        )
        spec = self.workdir / "fixtures-spec.json"
        out = self.workdir / "fixtures.json"
        spec.write_text(
            json.dumps({"users": users, "rooms": rooms, "password": PASSWORD, "prefix": "bench"})
        )
        subprocess.run(
            [PYTHON, "-m", "bench.fixtures", str(spec), str(out)],
            cwd=ROOT,
            env=self.env(),
            check=True,
            timeout=300,
        )
        return json.loads(out.read_text())

    def drop(self) -> None:
        if self.created:
            self.admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            self.created = False


class SqliteDatabase(BenchDatabase):
    """The embedded default: a SQLite file in the bench's work directory."""

    def __init__(self, workdir: Path):
        super().__init__("sqlite://", workdir)
        self.path = workdir / f"bench-{uuid.uuid4().hex[:8]}.sqlite3"
        self.name = self.path.name
        self.url = self.server_url = f"sqlite:///{self.path}"

    def admin(self, sql: str) -> None:  # no server to create databases on
        pass

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.created = False


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Servers:
    """`manage.py serve` processes (daphne) of one deployment."""

    def __init__(
        self,
        database: BenchDatabase,
        layer: str,
        processes: int,
        args,
        workdir: Path,
        env: dict | None = None,
    ):
        """`env`: settings over the bench's own (a value None: the server's default)."""
        self.database = database
        self.extra_env = env or {}
        self.layer = layer
        self.redis_url = None if layer == "memory" else args.redis_url
        self.prefix = f"bench{uuid.uuid4().hex[:8]}:"
        self.count = processes
        self.args = args
        self.workdir = workdir
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.retired: list[subprocess.Popen] = []  # replaced by restart(), still stopping

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def server_env(self) -> dict:
        settings = {
            # One publisher socket sends as fast as it can: lift its frame rate limit.
            "REALTIME_RATE_BURST": 1_000_000,
            "REALTIME_RATE_PER_SECOND": 1_000_000,
        }
        settings.update(self.extra_env)
        return self.database.env(
            server=True,
            REDIS_URL=self.redis_url,
            REDIS_CHANNEL_LAYER=self.layer if self.redis_url else None,
            REALTIME_REDIS_PREFIX=self.prefix,
            **settings,
        )

    def spawn(self, port: int, log: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [
                PYTHON,
                "manage.py",
                "serve",
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--grace",
                "3",
            ],
            cwd=ROOT,
            env=self.server_env(),
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench only; it stops the servers
        )

    @staticmethod
    def wait_healthy(port: int, process: subprocess.Popen, log: Path, deadline: float) -> None:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer /healthz:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    def start(self, timeout: float = 60) -> "Servers":
        for _ in range(self.count):
            port = free_port()
            log = self.workdir / f"server-{port}.log"
            log.write_text("")
            self.ports.append(port)
            self.processes.append(self.spawn(port, log))
            self.logs.append(log)
        deadline = time.monotonic() + timeout
        for port, process, log in zip(self.ports, self.processes, self.logs, strict=True):
            self.wait_healthy(port, process, log, deadline)
        return self

    def restart(self, index: int, timeout: float = 60) -> dict:
        """SIGTERM process `index` and start a new one on its port as soon as the old
        one has stopped listening (it goes on closing its sockets meanwhile).
        Blocking; returns the wall-clock times it listened and answered /healthz."""
        import socket

        old, port, log = self.processes[index], self.ports[index], self.logs[index]
        old.send_signal(signal.SIGTERM)
        self.retired.append(old)
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"port {port} still in use after SIGTERM") from None
                    time.sleep(0.01)
        with log.open("a") as f:
            f.write(f"\n--- restart at {time.time():.3f} ---\n")
        self.processes[index] = self.spawn(port, log)
        listening = time.time()
        self.wait_healthy(port, self.processes[index], log, deadline)
        return {"listening": listening, "healthy": time.time()}

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes + self.retired:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes, self.retired = [], []
        if self.redis_url:
            try:
                import redis

                client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
                keys = list(client.scan_iter(match=self.prefix + "*", count=1000))
                for i in range(0, len(keys), 500):
                    client.delete(*keys[i : i + 500])
            except Exception as error:
                print(
                    f"warning: could not clean Redis keys {self.prefix}*: {error}", file=sys.stderr
                )


def http_login(port: int, username: str, password: str) -> str:
    """Sign in through POST /api/auth/login/ (CSRF, Origin) and return the Cookie header."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    opener.open(base + "/api/auth/csrf/", timeout=10).read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    request = urllib.request.Request(
        base + "/api/auth/login/",
        data=json.dumps({"username": username, "password": password}).encode(),
        method="POST",
    )
    for name, value in (
        ("Content-Type", "application/json"),
        ("Origin", base),
        ("Referer", base + "/"),
        ("X-CSRFToken", csrf),
    ):
        request.add_header(name, value)
    opener.open(request, timeout=30).read()
    session = next(c.value for c in jar if c.name == "sessionid")
    return f"sessionid={session}"


# Load-generator workers ---------------------------------------------------------------


class WorkerHandle:
    def __init__(self, context):
        parent, child = context.Pipe()
        self.process = context.Process(target=worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent

    async def call(self, name: str, call_timeout: float, **kwargs):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        fd = self.conn.fileno()

        def readable():
            loop.remove_reader(fd)
            if not future.done():
                try:
                    future.set_result(self.conn.recv())
                except Exception as error:
                    future.set_exception(error)

        self.conn.send((name, kwargs))
        loop.add_reader(fd, readable)
        try:
            status, result = await asyncio.wait_for(future, call_timeout)
        finally:
            loop.remove_reader(fd)
        if status != "ok":
            raise RuntimeError(f"worker {name}: {result}")
        return result

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(("exit", {}))
            except (BrokenPipeError, OSError):
                pass
            self.process.join(2)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2)
        if self.process.is_alive():
            self.process.kill()


async def call_all(workers, name, call_timeout, per_worker=None, **kwargs):
    calls = []
    for i, worker in enumerate(workers):
        extra = per_worker[i] if per_worker else {}
        calls.append(worker.call(name, call_timeout, **kwargs, **extra))
    return await asyncio.gather(*calls)


# The publisher -------------------------------------------------------------------------


class Publisher:
    def __init__(self):
        self.ws = None
        loop = asyncio.get_running_loop()
        self.welcome = loop.create_future()
        self.done = loop.create_future()
        self.acks = 0
        self.errors: list = []
        self.expected = 0
        self.window: asyncio.Semaphore | None = None
        self.last_ack_at = 0.0

    def on_message(self, opcode, payload):
        if opcode != OP_TEXT:
            return
        frame = orjson.loads(payload)
        kind = frame.get("type")
        if kind == "ack":
            self.acks += 1
        elif kind == "error":
            self.errors.append(frame)
        elif kind == "welcome" and not self.welcome.done():
            self.welcome.set_result(frame)
            return
        else:
            return
        self.last_ack_at = time.time()
        if self.window is not None:
            self.window.release()
        if self.acks + len(self.errors) >= self.expected and not self.done.done():
            self.done.set_result(None)

    async def open(self, port: int, cookie: str) -> None:
        self.ws = await connect(
            "127.0.0.1",
            port,
            origin=f"http://127.0.0.1:{port}",
            cookie=cookie,
            subprotocol=SUBPROTOCOL,
            on_message=self.on_message,
            on_close=lambda code: None,
        )
        welcome = await asyncio.wait_for(self.welcome, 10)
        if welcome.get("user") is None:
            raise RuntimeError("the publisher's session was not accepted")

    async def run(
        self, topic: str, count: int, rate: float | None, window: int, wait_s: float
    ) -> dict:
        self.expected = count
        self.window = None if rate else asyncio.Semaphore(window)
        first = time.time()
        for i in range(count):
            if rate:
                delay = first + i / rate - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await self.window.acquire()
            frame = {
                "type": "publish",
                "topic": topic,
                "ref": f"p{i}",
                "data": {"text": f"bench {time.time():.6f} {i}"},
            }
            self.ws.send_text(orjson.dumps(frame))
        last_sent = time.time()
        try:
            await asyncio.wait_for(asyncio.shield(self.done), wait_s)
        except TimeoutError:
            pass
        return {
            "first_sent": first,
            "last_sent": last_sent,
            "acks": self.acks,
            "errors": len(self.errors),
            "error_samples": self.errors[:3],
            "last_ack_at": self.last_ack_at,
        }


# One run ----------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    layer: str
    processes: int
    kind: str
    clients: int
    messages: int = 0
    rate: float | None = None
    connected: int = 0
    connect_failures: int = 0
    connect_retries: int = 0
    handshakes_per_s: float = 0.0
    handshake_p50_ms: float = 0.0
    handshake_p99_ms: float = 0.0
    kib_per_idle_connection: float | None = None
    subscribe_s: float = 0.0
    presence_frames: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    stray: int = 0
    subscriber_errors: int = 0
    closes: dict = field(default_factory=dict)
    acks: int = 0
    publish_errors: int = 0
    publish_rate: float = 0.0
    delivered_per_s: float = 0.0
    window_s: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    server_cpu_us_per_delivery: float | None = None
    server_cpu_cores: float = 0.0
    server_rss_mib: float = 0.0
    redis_cpu_cores: float | None = None
    postgres_cpu_cores: float | None = None
    loadgen_cpu_cores: float = 0.0
    machine_busy_pct: float = 0.0
    other_cpu_cores: float = 0.0
    acks_per_s: float = 0.0
    profiled: bool = False
    error: str | None = None
    notes: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # the issue 12 kinds' own figures


def percentile(sorted_values, q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class Meter:
    """CPU of the servers, the load generator and the machine over a window."""

    def __init__(self, server_pids, loadgen_pids, redis_url):
        self.server_pids = server_pids
        self.loadgen_pids = loadgen_pids
        self.redis_url = redis_url

    def snapshot(self) -> dict:
        return {
            "t": time.time(),
            "server": sum(cpu_seconds(p) for p in self.server_pids),
            "loadgen": sum(cpu_seconds(p) for p in self.loadgen_pids),
            "redis": redis_cpu(self.redis_url),
            "postgres": postgres_cpu(),
            "machine": machine_cpu(),
        }

    @staticmethod
    def delta(a: dict, b: dict) -> dict:
        elapsed = max(1e-9, b["t"] - a["t"])
        busy = (b["machine"][0] - a["machine"][0]) / max(1, b["machine"][1] - a["machine"][1])
        redis = None
        if a["redis"] is not None and b["redis"] is not None:
            redis = (b["redis"] - a["redis"]) / elapsed
        return {
            "elapsed": elapsed,
            "server": b["server"] - a["server"],
            "loadgen": b["loadgen"] - a["loadgen"],
            "redis_cores": redis,
            "postgres_cores": (b["postgres"] - a["postgres"]) / elapsed,
            "machine_busy": busy,
        }


def assign(count: int, ports: list[int], cookies: list[str], workers: int):
    """Connection i: server ports[i % P], worker (i // P) % W, user i."""
    per_worker = [[] for _ in range(workers)]
    for i in range(count):
        per_worker[(i // len(ports)) % workers].append((ports[i % len(ports)], cookies[i]))
    return per_worker


async def connect_phase(workers, result, targets, args) -> None:
    per_worker = [{"targets": t, "concurrency": args.concurrency, "wait_s": 30} for t in targets]
    replies = await call_all(workers, "connect", args.phase_timeout, per_worker=per_worker)
    started = min(r["started"] for r in replies)
    done = max(r["done"] for r in replies)
    result.connected = sum(r["ok"] for r in replies)
    result.connect_failures = sum(r["failed"] for r in replies)
    result.connect_retries = sum(r["retried"] for r in replies)
    if result.connect_retries:
        result.notes.append(f"{result.connect_retries} handshakes reset and retried")
    for r in replies:
        result.notes += [f"connect: {f}" for f in r["failures"][:2]]
    times = array("d")
    for r in replies:
        times.frombytes(r["handshake_times"])
    times = sorted(times)
    result.handshakes_per_s = result.connected / max(1e-9, done - started)
    result.handshake_p50_ms = percentile(times, 0.5) * 1000
    result.handshake_p99_ms = percentile(times, 0.99) * 1000


async def run_idle(scenario, servers, workers, fixtures, args, meter) -> Result:
    result = Result(
        scenario.name, scenario.layer, scenario.processes, scenario.kind, scenario.clients
    )
    cookies = fixtures["cookies"]
    # Warm up: one connection per server (imports, the hub, pools), then the baseline.
    warm = assign(len(servers.ports), servers.ports, cookies, len(workers))
    await connect_phase(workers, Result("warm", "", 0, "", 0), warm, args)
    await call_all(workers, "close", 30, wait_s=5)
    await asyncio.sleep(1.0)
    before = sum(rss_kib(p) for p in servers.pids)
    await connect_phase(
        workers, result, assign(scenario.clients, servers.ports, cookies, len(workers)), args
    )
    await asyncio.sleep(args.settle)
    after = sum(rss_kib(p) for p in servers.pids)
    result.server_rss_mib = after / 1024
    if result.connected:
        result.kib_per_idle_connection = (after - before) / result.connected
    await call_all(workers, "close", 60, wait_s=10)
    return result


async def run_fanout(
    scenario, servers, workers, fixtures, args, meter, publisher_cookie, room, profile_dir=None
) -> Result:
    result = Result(
        scenario.name,
        scenario.layer,
        scenario.processes,
        scenario.kind,
        scenario.clients,
        scenario.messages,
        scenario.rate,
    )
    topic = f"room:{room}"
    n, m = scenario.clients, scenario.messages
    await connect_phase(
        workers, result, assign(n, servers.ports, fixtures["cookies"], len(workers)), args
    )
    if result.connect_failures:
        result.error = f"{result.connect_failures} connections failed"
        return result
    t0 = time.time()
    subscribed = await call_all(
        workers,
        "subscribe",
        args.phase_timeout,
        topic=topic,
        expected=m,
        wait_s=args.phase_timeout - 5,
    )
    failures = sum(r["failed"] for r in subscribed)
    if failures:
        result.error = f"{failures} subscriptions failed: {subscribed[0]['failures'][:1]}"
        return result
    # Presence: every subscriber's join is a presence_diff to the others. Let it settle.
    quiet = await call_all(
        workers, "quiet", args.phase_timeout, quiet_for=1.0, wait_s=args.phase_timeout - 5
    )
    result.subscribe_s = time.time() - t0 - 1.0
    result.presence_frames = sum(r["frames"] for r in quiet)

    publisher = Publisher()
    await publisher.open(servers.ports[0], publisher_cookie)
    spy = None
    if profile_dir is not None:
        spy = start_py_spy(servers.pids, profile_dir, scenario)
    start = meter.snapshot()
    published = await publisher.run(topic, m, scenario.rate, args.window, wait_s=args.phase_timeout)
    deadline = time.time() + args.drain_timeout
    collected = await call_all(workers, "collect", args.drain_timeout + 30, deadline=deadline)
    end = meter.snapshot()
    cpu = Meter.delta(start, end)
    if spy is not None:
        result.notes.append(stop_py_spy(spy))
    publisher.ws.close()

    result.acks = published["acks"]
    result.publish_errors = published["errors"]
    if published["error_samples"]:
        result.notes.append(f"publish error: {published['error_samples'][0]}")
    result.publish_rate = (
        m / max(1e-9, published["last_sent"] - published["first_sent"]) if m > 1 else 0
    )
    result.expected = n * result.acks
    result.delivered = sum(c["unique"] for c in collected)
    result.lost = result.expected - result.delivered
    result.duplicates = sum(c["duplicates"] for c in collected)
    result.out_of_order = sum(c["out_of_order"] for c in collected)
    result.stray = sum(c["stray_events"] for c in collected)
    result.subscriber_errors = sum(c["errors"] for c in collected)
    for c in collected:
        for code, count in c["closes"].items():
            result.closes[code] = result.closes.get(code, 0) + count
        for sample in c["error_samples"][:1]:
            result.notes.append(f"subscriber error: {sample}")
    last_event = max((c["last_event_at"] for c in collected), default=0) or end["t"]
    result.window_s = max(1e-9, last_event - published["first_sent"])
    result.delivered_per_s = result.delivered / result.window_s
    latencies = array("d")
    for c in collected:
        latencies.frombytes(c["latencies"])
    latencies = sorted(latencies)
    if latencies:
        result.latency_p50_ms = percentile(latencies, 0.5) * 1000
        result.latency_p99_ms = percentile(latencies, 0.99) * 1000
        result.latency_max_ms = latencies[-1] * 1000
    if result.delivered:
        result.server_cpu_us_per_delivery = cpu["server"] / result.delivered * 1e6
    result.server_cpu_cores = cpu["server"] / cpu["elapsed"]
    result.loadgen_cpu_cores = cpu["loadgen"] / cpu["elapsed"]
    result.redis_cpu_cores = cpu["redis_cores"]
    result.postgres_cpu_cores = cpu["postgres_cores"]
    result.machine_busy_pct = cpu["machine_busy"] * 100
    # Whatever else ran on the machine meanwhile (other users of a shared box).
    result.other_cpu_cores = max(
        0.0,
        cpu["machine_busy"] * (os.cpu_count() or 1)
        - result.server_cpu_cores
        - result.loadgen_cpu_cores
        - result.postgres_cpu_cores
        - (result.redis_cpu_cores or 0.0),
    )
    if published["last_ack_at"] > published["first_sent"]:
        result.acks_per_s = result.acks / (published["last_ack_at"] - published["first_sent"])
    result.server_rss_mib = sum(rss_kib(p) for p in servers.pids) / 1024
    await call_all(workers, "close", 60, wait_s=10)
    return result


# py-spy -------------------------------------------------------------------------------------


def start_py_spy(pids, profile_dir: Path, scenario):
    exe = shutil.which("py-spy", path=str(Path(PYTHON).parent)) or shutil.which("py-spy")
    if exe is None:
        print("py-spy not found (pip install py-spy into .venv); not profiling", file=sys.stderr)
        return None
    spies = []
    for pid in pids:
        out = profile_dir / f"{scenario.name}-{pid}.txt"
        process = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(profile_dir / f"py-spy-{pid}.log").open("w"),
            start_new_session=True,
        )
        spies.append((process, out))
    time.sleep(0.5)
    return spies


def stop_py_spy(spies) -> str:
    outputs = []
    for process, out in spies:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        outputs.append(str(out))
    return "py-spy: " + ", ".join(outputs)


def summarize_profile(path: Path, top: int = 25) -> str:
    """Top frames of a py-spy raw (collapsed) profile: self and inclusive share."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue  # not a "frames count" line
        count = int(count)
        total += count
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    lines = [f"{path.name}: {total} samples", "  self%  frame"]
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * count / max(1, total):5.1f}  {frame}")
    lines.append("  incl%  frame")
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[: top * 2]:
        lines.append(f"  {100 * count / max(1, total):5.1f}  {frame}")
    return "\n".join(lines)


# Output ---------------------------------------------------------------------------------------


def fmt(value, spec="{:,.0f}", none="-"):
    if value is None or (isinstance(value, float) and value != value):
        return none
    return spec.format(value)


def table(results: list[Result]) -> str:
    fanout = [r for r in results if r.kind == "fanout"]
    idle = [r for r in results if r.kind == "idle"]
    out = []
    if fanout:
        header = (
            "| scenario | layer | procs | N | M | rate | delivered/s | loss | dup | out of order | "
            "p50 ms | p99 ms | max ms | server CPU µs/delivery | server cores | "
            "postgres cores | redis cores | "
            "load-gen cores | other cores | acks/s | handshakes/s | subscribe s | closes |"
        )
        out += [header, "|" + "---|" * header.count(" | ") + "---|"]
        for r in fanout:
            loss = f"{r.lost:,} ({100 * r.lost / r.expected:.1f} %)" if r.expected else "-"
            if r.error:
                loss = f"ERROR: {r.error}"
            closes = ", ".join(f"{k}×{v}" for k, v in sorted(r.closes.items())) or "-"
            out.append(
                "| "
                + " | ".join(
                    [
                        r.scenario + (" (profiled)" if r.profiled else ""),
                        r.layer,
                        str(r.processes),
                        f"{r.clients:,}",
                        str(r.messages),
                        f"{r.rate:g}/s" if r.rate else "max",
                        fmt(r.delivered_per_s),
                        loss,
                        str(r.duplicates),
                        str(r.out_of_order),
                        fmt(r.latency_p50_ms),
                        fmt(r.latency_p99_ms),
                        fmt(r.latency_max_ms),
                        fmt(r.server_cpu_us_per_delivery, "{:.1f}"),
                        fmt(r.server_cpu_cores, "{:.2f}"),
                        fmt(r.postgres_cpu_cores, "{:.2f}"),
                        fmt(r.redis_cpu_cores, "{:.2f}"),
                        fmt(r.loadgen_cpu_cores, "{:.2f}"),
                        fmt(r.other_cpu_cores, "{:.2f}"),
                        fmt(r.acks_per_s),
                        fmt(r.handshakes_per_s),
                        fmt(r.subscribe_s, "{:.1f}"),
                        closes,
                    ]
                )
                + " |"
            )
    if idle:
        if out:
            out.append("")
        header = (
            "| scenario | layer | procs | connections | KiB per idle connection | handshakes/s | "
            "handshake p50 ms | p99 ms | server RSS MiB | retried | failures |"
        )
        out += [header, "|" + "---|" * header.count(" | ") + "---|"]
        for r in idle:
            out.append(
                "| "
                + " | ".join(
                    [
                        r.scenario,
                        r.layer,
                        str(r.processes),
                        f"{r.connected:,}",
                        fmt(r.kib_per_idle_connection, "{:.1f}"),
                        fmt(r.handshakes_per_s),
                        fmt(r.handshake_p50_ms, "{:.1f}"),
                        fmt(r.handshake_p99_ms, "{:.1f}"),
                        fmt(r.server_rss_mib, "{:.0f}"),
                        str(r.connect_retries),
                        (r.error or str(r.connect_failures)),
                    ]
                )
                + " |"
            )
    more = issue12.table(results)
    if more and out:
        out.append("")
    return "\n".join(out + more)


# Main ----------------------------------------------------------------------------------------


class Interrupted(BaseException):
    pass


def raise_interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


async def bench(args, chosen, database, fixtures, workdir, state) -> list[Result]:
    context = multiprocessing.get_context("fork")
    results: list[Result] = []
    publisher_cookie = None
    profile_dir = workdir / "profiles"
    runs = [(s, False) for s in chosen]
    if args.profile:
        runs += [(s, True) for s in scenarios(args) if fnmatch.fnmatch(s.name, args.profile)]
    first_room = 0  # the issue 12 scenarios' rooms: q0, q1, ... (each scenario its own)
    for index, (scenario, profiled) in enumerate(runs):
        label = scenario.name + (" (profiled with py-spy)" if profiled else "")
        print(f"[{index + 1}/{len(runs)}] {label} ...", flush=True)
        workers = [WorkerHandle(context) for _ in range(args.workers)]
        state["workers"] = workers
        own_db, own_fixtures = database, fixtures
        if scenario.storage == "sqlite":
            own_db = SqliteDatabase(workdir)
            state["databases"].append(own_db)
        servers = Servers(
            own_db,
            scenario.layer,
            scenario.processes,
            args,
            workdir,
            env={**issue12.server_env(scenario), **dict(args.server_env)},
        )
        state["servers"] = servers
        try:
            if own_db is not database:
                rooms = [f"q{first_room + i}" for i in range(scenario.rooms)]
                own_fixtures = own_db.create(issue12.users_needed(scenario, args) + 1, rooms)
            servers.start()
            if publisher_cookie is None and scenario.kind == "fanout":
                # The publisher signs in through the real login endpoint (PBKDF2 once).
                publisher_cookie = http_login(servers.ports[0], fixtures["users"][-1], PASSWORD)
            meter = Meter(
                servers.pids, [w.process.pid for w in workers] + [os.getpid()], servers.redis_url
            )
            if scenario.kind in issue12.KINDS:
                spy = None
                if profiled:
                    profile_dir.mkdir(exist_ok=True)
                    spy = start_py_spy(servers.pids, profile_dir, scenario)
                try:
                    result = await issue12.run_scenario(
                        scenario, servers, workers, own_fixtures, args, meter, own_db, first_room
                    )
                finally:
                    if spy is not None:
                        note = stop_py_spy(spy)
                if spy is not None:
                    result.notes.append(note)
            elif scenario.kind == "idle":
                result = await run_idle(scenario, servers, workers, fixtures, args, meter)
            else:
                if profiled:
                    profile_dir.mkdir(exist_ok=True)
                result = await run_fanout(
                    scenario,
                    servers,
                    workers,
                    fixtures,
                    args,
                    meter,
                    publisher_cookie,
                    room=f"r{index}",
                    profile_dir=profile_dir if profiled else None,
                )
            result.profiled = profiled
        except (Exception, TimeoutError) as error:
            result = Result(
                scenario.name, scenario.layer, scenario.processes, scenario.kind, scenario.clients
            )
            result.error = f"{type(error).__name__}: {error}"[:300]
        finally:
            for worker in workers:
                worker.stop()
            servers.stop()
            state["servers"] = None
            state["workers"] = []
            if own_db is not database:
                own_db.drop()
            if scenario.kind in issue12.KINDS:
                first_room += scenario.rooms
        results.append(result)
        # Kept as the run goes: an interrupted run still leaves its figures.
        (workdir / "results-partial.json").write_text(
            json.dumps([asdict(r) for r in results], indent=1, default=str)
        )
        summary = (
            issue12.summary(result)
            if scenario.kind in issue12.KINDS
            else f"    delivered/s {fmt(result.delivered_per_s)}  loss {result.lost}  "
            f"dup {result.duplicates}  ooo {result.out_of_order}  "
            f"p50 {fmt(result.latency_p50_ms)} ms  p99 {fmt(result.latency_p99_ms)} ms  "
            f"server {fmt(result.server_cpu_us_per_delivery, '{:.1f}')} µs/delivery  "
            f"loadgen {result.loadgen_cpu_cores:.2f} cores"
            if scenario.kind == "fanout"
            else f"    {fmt(result.kib_per_idle_connection, '{:.1f}')} KiB/connection  "
            f"{fmt(result.handshakes_per_s)} handshakes/s"
        )
        print(summary if not result.error else f"    ERROR {result.error}", flush=True)
        for note in result.notes[:4]:
            print(f"    note: {note}"[:400], flush=True)
    if args.profile:
        for path in sorted(profile_dir.glob("*.txt")):
            print(summarize_profile(path))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario",
        default="all",
        help="all, quick, none (only --profile), or comma-separated names/globs "
        "(e.g. 'memory-1p-*')",
    )
    parser.add_argument("--list", action="store_true", help="list the scenario names and exit")
    parser.add_argument(
        "--workers", type=int, default=2, help="load-generator processes (default 2)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=50, help="handshakes in flight per worker"
    )
    parser.add_argument(
        "--rate", type=float, default=200.0, help="messages/s of the rated scenarios"
    )
    parser.add_argument(
        "--messages-rated", type=int, default=500, help="messages published at --rate"
    )
    parser.add_argument(
        "--messages-max", type=int, default=500, help="messages published unthrottled"
    )
    parser.add_argument(
        "--window", type=int, default=50, help="unacked publishes in flight when unthrottled"
    )
    parser.add_argument("--idle", type=int, default=5000, help="connections of the idle scenarios")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for deliveries after the last ack",
    )
    parser.add_argument(
        "--phase-timeout",
        type=float,
        default=150.0,
        help="bound on each phase (connect, subscribe, publish)",
    )
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds before reading the idle RSS"
    )
    parser.add_argument("--time-limit", type=float, default=3600.0, help="bound on the whole run")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        type=lambda item: tuple(item.split("=", 1)),
        metavar="NAME=VALUE",
        help="a setting for the servers, e.g. REALTIME_DATABASE_WORKERS=8 (repeatable)",
    )
    parser.add_argument(
        "--profile", help="also rerun the scenarios matching this glob under py-spy (separate rows)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (without database); a fresh database is created and dropped",
    )
    parser.add_argument(
        "--database-query",
        default="",
        help="query string for the servers' DATABASE_URL, e.g. conn_max_age=60 "
        "(an ablation; the default is the settings as deployed)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for the Redis scenarios (keys under a unique prefix, removed after)",
    )
    parser.add_argument(
        "--out", help="write the results as JSON here (default: in the work directory)"
    )
    issue12.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(s.name for s in scenarios(args)))
        return 0
    for url in (args.database_url, args.redis_url):
        host = url.split("@")[-1].split("//")[-1].split(":")[0].split("/")[0]
        if host not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"the bench talks to 127.0.0.1 only, not {host}")
    chosen = select(args)

    # 5,000 clients and 5,000 server sockets: raise the descriptor limit (inherited by the servers).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    sockets = max([args.idle, args.handshakes, args.storm_clients])
    want = (
        min(hard, max(soft, 4 * sockets + 1024))
        if hard != resource.RLIM_INFINITY
        else 4 * sockets + 1024
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    workdir = Path(tempfile.mkdtemp(prefix="realtime-bench-"))
    state = {"servers": None, "workers": [], "databases": []}
    database = BenchDatabase(args.database_url, workdir, args.database_query)
    previous = {s: signal.signal(s, raise_interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGALRM, raise_interrupted)
    signal.alarm(int(args.time_limit))
    info = machine()
    print(
        f"machine: {info['nproc']} cores, {info['cpu']}, {info['memory_gib']} GiB; "
        f"work directory {workdir}"
    )
    print(
        f"server code: commit {info['commit']}, "
        f"uncommitted: {info['server_code_changes'] or 'none'}"
    )
    results: list[Result] = []
    try:
        profiled = [
            s for s in scenarios(args) if args.profile and fnmatch.fnmatch(s.name, args.profile)
        ]
        on_pg = [s for s in chosen + profiled if s.storage == "pg"]
        needed = max([issue12.users_needed(s, args) for s in on_pg] + [10]) + 1
        print(f"creating database {database.name}: {needed} users and sessions ...", flush=True)
        t = time.time()
        rooms = [f"r{i}" for i in range(len(chosen) + 40)]
        rooms += [
            f"q{i}"
            for i in range(sum(s.rooms for s in chosen + profiled if s.kind in issue12.KINDS))
        ]
        fixtures = database.create(needed, rooms)
        print(f"  done in {time.time() - t:.1f} s", flush=True)
        results = asyncio.run(bench(args, chosen, database, fixtures, workdir, state))
    except (KeyboardInterrupt, Interrupted) as error:
        print(f"\ninterrupted ({type(error).__name__} {error}); cleaning up", file=sys.stderr)
    finally:
        signal.alarm(0)
        for worker in state["workers"]:
            worker.stop()
        if state["servers"] is not None:
            state["servers"].stop()
        for db in [database, *state["databases"]]:
            try:
                db.drop()
            except Exception as error:
                print(f"warning: could not drop {db.name}: {error}", file=sys.stderr)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not results:
        return 1
    out = Path(args.out) if args.out else workdir / "results.json"
    out.write_text(
        json.dumps(
            {"machine": info, "args": vars(args), "results": [asdict(r) for r in results]},
            indent=1,
            default=str,
        )
    )
    print()
    print(table(results))
    print(f"\nresults: {out}; server logs: {workdir}")
    return 0 if all(r.error is None for r in results) else 2


if __name__ == "__main__":
    sys.exit(main())
