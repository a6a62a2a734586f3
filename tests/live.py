"""
Real servers for end-to-end tests: `manage.py serve` (daphne) processes on real
ports, over a database of their own (a file for SQLite, a fresh database on
PostgreSQL), and real clients (the `websockets` library, HTTP with cookies).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from http.cookiejar import CookieJar
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
SECRET = "live-test-secret-key-" + "x" * 40


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

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def drop(self) -> None:
        if self.postgres_url:
            self.admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


class LiveServer:
    """One `manage.py serve` process on its own port."""

    def __init__(self, database: LiveDatabase, *, redis_url: str | None = None, **env):
        self.database = database
        self.redis_url = redis_url
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
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port), "--grace", "5"],
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


class HttpSession:
    """A browser-like HTTP client: cookies, CSRF header, Origin."""

    def __init__(self, server: LiveServer):
        self.server = server
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.user_id: int | None = None
        self.username: str | None = None

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        if self.cookie("csrftoken") is None and method != "GET":
            self.request("GET", "/api/auth/csrf/")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Origin", self.server.url)
        request.add_header("Referer", self.server.url + "/")
        if self.cookie("csrftoken"):
            request.add_header("X-CSRFToken", self.cookie("csrftoken"))
        try:
            with self.opener.open(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw)
            except ValueError:
                return error.code, {"raw": raw.decode(errors="replace")[:500]}

    def login(self, username: str, password: str) -> "HttpSession":
        status, body = self.request(
            "POST", "/api/auth/login/", {"username": username, "password": password}
        )
        assert status == 200, body
        self.user_id, self.username = self.request("GET", "/api/me/")[1]["id"], username
        return self

    def signup(self, username: str, password: str) -> "HttpSession":
        """Create an account through the sign-up page (signed in afterwards)."""
        from urllib.parse import urlencode

        self.opener.open(self.server.url + "/signup/", timeout=10).read()
        form = urlencode(
            {
                "csrfmiddlewaretoken": self.cookie("csrftoken"),
                "username": username,
                "password1": password,
                "password2": password,
            }
        ).encode()
        request = urllib.request.Request(self.server.url + "/signup/", data=form, method="POST")
        request.add_header("Origin", self.server.url)
        request.add_header("Referer", self.server.url + "/signup/")
        with self.opener.open(request, timeout=10) as response:
            response.read()
        status, me = self.request("GET", "/api/me/")
        assert status == 200 and me["username"] == username, (status, me)
        self.user_id, self.username = me["id"], username
        return self

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


async def ws_connect(server: LiveServer, session: HttpSession | None = None, **kwargs):
    """A real WebSocket client through the real handshake (Origin, session cookie)."""
    headers = {}
    if session is not None:
        headers["Cookie"] = session.cookie_header()
    socket_ = await websockets.connect(
        server.ws_url,
        origin=kwargs.pop("origin", server.url),
        additional_headers=headers,
        subprotocols=kwargs.pop("subprotocols", ["realtime.v1"]),
        max_size=None,
        **kwargs,
    )
    return socket_


async def receive(socket_, timeout: float = 5) -> dict:
    import asyncio

    return json.loads(await asyncio.wait_for(socket_.recv(), timeout))


async def receive_until(socket_, frame_type: str, timeout: float = 5) -> list[dict]:
    frames = []
    while True:
        frames.append(await receive(socket_, timeout))
        if frames[-1]["type"] == frame_type:
            return frames
