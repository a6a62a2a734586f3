"""
Real servers for end-to-end tests: `manage.py serve` (daphne) processes on real
ports, over a database of their own (a file for SQLite, a fresh database on
PostgreSQL), and real clients (the `websockets` library, HTTP with cookies).
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "live-test-secret-key-" + "x" * 40
# A server whose per-connection frame limit never gets in a test's way.
UNTHROTTLED = {"REALTIME_RATE_BURST": "100000", "REALTIME_RATE_PER_SECOND": "100000"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveDatabase:
    """A database for server processes: migrated once, dropped at the end."""

    def __init__(self, tmp_path: Path, postgres_url: str | None):
        self.name = f"realtime_live_{uuid.uuid4().hex[:8]}"
        self.postgres_url = postgres_url
        if postgres_url:
            base = postgres_url.rsplit("/", 1)[0]
            self.url = f"{base}/{self.name}"
            self.admin("CREATE DATABASE " + self.name)
        else:
            self.url = f"sqlite:///{tmp_path / (self.name + '.sqlite3')}"
        self.manage("migrate", "--noinput", "-v", "0")
        # Served with DJANGO_DEBUG=0: hashed, compressed static files, as in production.
        self.manage("collectstatic", "--noinput", "-v", "0")

    def admin(self, sql: str) -> None:
        import psycopg

        base = self.postgres_url.rsplit("/", 1)[0]
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            connection.execute(sql)

    def env(self, **extra) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTEST", "DJANGO_")) and k not in ("REDIS_URL", "DATABASE_URL")
        }
        env.update(
            DATABASE_URL=self.url,
            DJANGO_SECRET_KEY=SECRET,
            DJANGO_DEBUG="0",
            PYTHONUNBUFFERED="1",
        )
        env.update({k: v for k, v in extra.items() if v is not None})
        return env

    def manage(self, *args: str, **env) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def create_user(self, username: str, password: str, *, staff: bool = False) -> int:
        code = (
            "from django.contrib.auth import get_user_model as g;"
            f"u=g().objects.create_user({username!r}, password={password!r}, is_staff={staff});"
            "print(u.pk)"
        )
        return int(self.manage("shell", "-c", code).strip().splitlines()[-1])

    def create_users(self, usernames: list[str], password: str) -> None:
        """Several users in one `manage.py shell` (each call costs a Django start)."""
        code = (
            "from django.contrib.auth import get_user_model as g;"
            f"[g().objects.create_user(n, password={password!r}) for n in {usernames!r}]"
        )
        self.manage("shell", "-c", code)

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def drop(self) -> None:
        if self.postgres_url:
            self.admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


class LiveServer:
    """One `manage.py serve` process on its own port."""

    def __init__(
        self,
        database: LiveDatabase,
        *,
        redis_url: str | None = None,
        plain_daphne: bool = False,
        **env,
    ):
        self.database = database
        self.redis_url = redis_url
        # `daphne config.asgi:application` as a deployer may start it, instead of `serve`.
        self.plain_daphne = plain_daphne
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = Path(f"/tmp/realtime-live-{self.port}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def start(self, timeout: float = 20) -> "LiveServer":
        env = self.database.env(REDIS_URL=self.redis_url, **self.env)
        env["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
        daphne = str(Path(sys.executable).parent / "daphne")
        command = (
            [daphne, "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"]
            if self.plain_daphne
            else [sys.executable, "manage.py", "serve", "--port", str(self.port), "--grace", "5"]
        )
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer /healthz:\n{self.log.read_text()}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 15) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class RedisServer:
    """A Redis of the test's own on a free port, to stop and start under a live server."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> "RedisServer":
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def member_with_room(database: LiveDatabase, server: LiveServer, password: str):
    """A fresh user signed in on `server` and a room of theirs: (HttpSession, topic)."""
    from deploy.client import HttpSession

    name = f"u{uuid.uuid4().hex[:8]}"
    database.create_user(name, password)
    session = HttpSession(server).login(name, password)
    slug = f"r{uuid.uuid4().hex[:8]}"
    status, body = session.request("POST", "/api/rooms/", {"slug": slug, "name": slug})
    assert status == 201, body
    return session, f"room:{slug}"
