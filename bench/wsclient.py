"""
A small, fast WebSocket client (RFC 6455) on asyncio's Protocol API.

The load generator shares two cores with the server, so its per-message cost
matters more than features: this client parses every frame that arrived in
one TCP read in one pass, with no future or queue per message (the
`websockets` library pays both). It does exactly what a browser does at the
handshake (an HTTP/1.1 Upgrade with `Origin`, `Cookie` and
`Sec-WebSocket-Protocol`), masks what it sends, answers pings and close
frames. Extensions (permessage-deflate) are not offered.
"""

import asyncio
import base64
import hashlib
import os
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    pass


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (FIN set)."""
    n = len(payload)
    key = os.urandom(4)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + key + _mask(payload, key)


class WebSocketClient(asyncio.Protocol):
    """
    One client connection. `on_message(opcode, payload: bytes)` is called for
    every complete text or binary message; `on_close(code)` once, when the
    connection ends (code None when it ended without a close frame).
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str = "/ws/",
        *,
        origin: str | None = None,
        cookie: str | None = None,
        subprotocol: str | None = None,
        on_message=None,
        on_close=None,
    ):
        self.host, self.port, self.path = host, port, path
        self.origin, self.cookie, self.subprotocol = origin, cookie, subprotocol
        self.on_message = on_message
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._key = base64.b64encode(os.urandom(16))
        self._is_upgraded = False
        self._close_sent = False

    # asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
            "User-Agent: realtime-bench",
        ]
        if self.origin:
            lines.append(f"Origin: {self.origin}")
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        if self.subprotocol:
            lines.append(f"Sec-WebSocket-Protocol: {self.subprotocol}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin1"))

    def data_received(self, data):
        buffer = self._buffer
        buffer += data
        if not self._is_upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > 65536:
                    self._fail(HandshakeError("handshake response too large"))
                return
            head = bytes(buffer[:end]).decode("latin1")
            del buffer[: end + 4]
            status_line, *header_lines = head.split("\r\n")
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or parts[1] != "101":
                self._fail(HandshakeError(status_line))
                return
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            expected = base64.b64encode(hashlib.sha1(self._key + GUID).digest()).decode()
            if headers.get("sec-websocket-accept") != expected:
                self._fail(HandshakeError("bad Sec-WebSocket-Accept"))
                return
            self._is_upgraded = True
            if not self.upgraded.done():
                self.upgraded.set_result(headers.get("sec-websocket-protocol"))
        self._parse()

    def connection_lost(self, exc):
        if not self.upgraded.done():
            self.upgraded.set_exception(exc or HandshakeError("connection closed in handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)
            if self.on_close:
                self.on_close(self.close_code)

    # Frames -------------------------------------------------------------------

    def _parse(self):
        buffer = self._buffer
        size = len(buffer)
        pos = 0
        on_message = self.on_message
        while size - pos >= 2:
            b0 = buffer[pos]
            length = buffer[pos + 1] & 0x7F
            header = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buffer[pos + 2] << 8) | buffer[pos + 3]
                header = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                header = 10
            if buffer[pos + 1] & 0x80:  # a masked server frame is a protocol error
                self._fail(HandshakeError("masked frame from server"))
                return
            end = pos + header + length
            if end > size:
                break
            payload = bytes(buffer[pos + header : end])
            pos = end
            opcode = b0 & 0x0F
            if opcode == OP_TEXT or opcode == OP_BINARY:
                if b0 & 0x80:
                    if on_message is not None:
                        on_message(opcode, payload)
                else:
                    self._fragment_opcode = opcode
                    self._fragments = [payload]
            elif opcode == OP_CONT:
                self._fragments.append(payload)
                if b0 & 0x80:
                    whole = b"".join(self._fragments)
                    self._fragments = []
                    if on_message is not None:
                        on_message(self._fragment_opcode, whole)
            elif opcode == OP_PING:
                self.transport.write(encode_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._send_close(payload[:2])
                self.transport.close()
                break
        if pos:
            del buffer[:pos]

    # Sending ------------------------------------------------------------------

    def send_text(self, text: str | bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        data = text.encode() if isinstance(text, str) else text
        self.transport.write(encode_frame(OP_TEXT, data))

    def _send_close(self, payload: bytes) -> None:
        if not self._close_sent and self.transport and not self.transport.is_closing():
            self._close_sent = True
            self.transport.write(encode_frame(OP_CLOSE, payload))

    def close(self, code: int = 1000) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self._send_close(struct.pack("!H", code))
        # The server answers with its close frame, then closes; don't wait forever.
        asyncio.get_running_loop().call_later(2.0, self.abort)

    def abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def _fail(self, error: Exception) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(error)
        if self.transport is not None:
            self.transport.abort()


async def connect(host: str, port: int, path: str = "/ws/", *, wait_s: float = 30, **kwargs):
    """Open a connection and complete the handshake; returns the protocol object."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: WebSocketClient(host, port, path, **kwargs), host, port),
        wait_s,
    )
    try:
        await asyncio.wait_for(asyncio.shield(client.upgraded), wait_s)
    except BaseException:
        client.abort()
        raise
    return client
