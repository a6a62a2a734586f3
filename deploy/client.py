"""
A browser-like client of a running server, for `deploy/cluster.py`'s check and
the end-to-end tests: an HTTP session with cookies, CSRF header and Origin, and
WebSockets through the real handshake (Origin, session cookie, subprotocol).
`server` is anything with `url` (http://host:port) and `ws_url` (ws://.../ws/).
"""

import asyncio
import json
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from urllib.parse import urlencode

import websockets


class HttpSession:
    """A browser-like HTTP client: cookies, CSRF header, Origin."""

    def __init__(self, server):
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


async def ws_connect(server, session: HttpSession | None = None, **kwargs):
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
    return json.loads(await asyncio.wait_for(socket_.recv(), timeout))


async def receive_until(socket_, frame_type: str, timeout: float = 5) -> list[dict]:
    frames = []
    while True:
        frames.append(await receive(socket_, timeout))
        if frames[-1]["type"] == frame_type:
            return frames


async def subscribed_socket(server, session: HttpSession, topic: str, **kwargs):
    """A socket past `welcome`, subscribed to a topic with presence, past `presence_state`."""
    socket_ = await ws_connect(server, session, **kwargs)
    await receive(socket_)
    await socket_.send(json.dumps({"type": "subscribe", "topic": topic}))
    await receive_until(socket_, "presence_state")
    return socket_
