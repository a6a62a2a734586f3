"""
`make cluster`: several daphne processes behind nginx on this machine, on
PostgreSQL and Redis, as deploy/ describes for a server.

    .venv/bin/python deploy/cluster.py [--processes 2] [--port 8080] [--check]

With --check it carries a WebSocket through nginx to each upstream (a staff
user lists the connections and sees every process), prints the result and
stops; without it, it serves until Ctrl-C and then stops every process
gracefully (sockets closed with 4012).
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "realtime.conf.template"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/realtime"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Cluster:
    """N `manage.py serve` processes on unix sockets, and nginx on a TCP port."""

    def __init__(self, *, processes: int, port: int, env: dict, workdir: Path):
        self.processes = processes
        self.port = port
        self.env = env
        self.workdir = workdir
        self.daphnes: list[subprocess.Popen] = []
        self.nginx: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def socket_path(self, index: int) -> Path:
        return self.workdir / f"daphne-{index}.sock"

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True)

    def start(self) -> "Cluster":
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("collectstatic", "--noinput", "-v", "0")
        for index in range(1, self.processes + 1):
            log = (self.workdir / f"daphne-{index}.log").open("w")
            self.daphnes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "manage.py",
                        "serve",
                        "--unix-socket",
                        str(self.socket_path(index)),
                        "--proxy-headers",
                    ],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for index in range(1, self.processes + 1):
            wait_for(lambda i=index: self.socket_path(i).exists(), f"daphne {index} socket")
            # nginx's workers run as another user (on a server: same group, UMask=0007).
            self.socket_path(index).chmod(0o666)
        self.workdir.chmod(0o755)
        config = self.workdir / "nginx.conf"
        config.write_text(self.nginx_config())
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.nginx = subprocess.Popen(
            [nginx, "-p", str(self.workdir), "-c", str(config), "-g", "daemon off;"],
            stdout=(self.workdir / "nginx.out").open("w"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: http_ok(self.url + "/healthz"), "nginx /healthz")
        return self

    def nginx_config(self) -> str:
        site = TEMPLATE.read_text()
        upstreams = "\n    ".join(
            f"server unix:{self.socket_path(i)};" for i in range(1, self.processes + 1)
        )
        site = (
            site.replace("{{UPSTREAMS}}", upstreams)
            .replace("{{LISTEN}}", f"127.0.0.1:{self.port}")
            .replace("{{STATIC_ROOT}}", str(ROOT / "staticfiles"))
        )
        temp = self.workdir
        return f"""
worker_processes 1;
pid {temp}/nginx.pid;
error_log {temp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    access_log {temp}/nginx-access.log;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{site}
}}
"""

    def stop(self) -> None:
        for process in self.daphnes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.daphnes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()


def wait_for(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


async def check(cluster: Cluster, username: str, password: str) -> dict:
    """Open sockets through nginx until every upstream holds one; what each server holds."""
    sys.path.insert(0, str(ROOT))
    from deploy.client import HttpSession, receive, ws_connect

    class Front:
        url = cluster.url
        ws_url = cluster.url.replace("http", "ws") + "/ws/"

    session = HttpSession(Front).login(username, password)
    sockets = []
    servers: dict[str, int] = {}
    try:
        for _ in range(cluster.processes * 4):
            socket_ = await ws_connect(Front, session)
            welcome = await receive(socket_)
            assert welcome["type"] == "welcome" and welcome["user"]["username"] == username
            sockets.append(socket_)
        status, listing = session.request("GET", "/api/connections/")
        assert status == 200, listing
        ours = {f"{socket.gethostname()}:{p.pid}" for p in cluster.daphnes}
        # daphne took the client's address from nginx's X-Forwarded-For.
        assert all((c.get("client") or "").startswith("127.0.0.1") for c in listing), listing
        for connection in listing:
            if connection["server"] in ours:
                servers[connection["server"]] = servers.get(connection["server"], 0) + 1
    finally:
        for socket_ in sockets:
            await socket_.close()
    return servers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--check", action="store_true", help="check both upstreams, then stop")
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    env.setdefault("DJANGO_DEBUG", "0")
    env.setdefault("DJANGO_SECRET_KEY", "cluster-local-secret-" + "k" * 40)
    if env["DATABASE_URL"] == DEFAULT_DATABASE_URL:
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qc",
                "CREATE DATABASE realtime",
            ],
            capture_output=True,
        )
    workdir = Path(tempfile.mkdtemp(prefix="realtime-cluster-"))
    cluster = Cluster(processes=args.processes, port=args.port, env=env, workdir=workdir)
    try:
        cluster.start()
        print(
            f"{args.processes} daphne processes behind nginx at {cluster.url} (logs in {workdir})"
        )
        if args.check:
            username = "cluster-check"
            password = "cluster-check-pass-1"
            subprocess.run(
                [
                    sys.executable,
                    "manage.py",
                    "shell",
                    "-c",
                    "from realtime.models import User;"
                    f"u,_=User.objects.get_or_create(username={username!r});"
                    f"u.is_staff=True;u.set_password({password!r});u.save()",
                ],
                cwd=ROOT,
                env=env,
                check=True,
            )
            servers = asyncio.run(check(cluster, username, password))
            print("sockets per upstream:", json.dumps(servers))
            if len(servers) != args.processes:
                print("FAILED: not every upstream got a socket")
                return 1
            print("OK: WebSockets carried through nginx to every upstream")
            return 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.wait(1):
            pass
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
