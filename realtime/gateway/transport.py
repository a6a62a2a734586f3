"""
The one adapter over daphne's internals (and Twisted's and autobahn's below
it). ASGI hides the socket; two things the gateway promises need it:

- the fast path: each event's WebSocket frame is built once per process and
  written straight to every subscriber's socket (one `send()` each), instead of
  one ASGI message, one encode and three system calls per subscriber;
- shedding (close 4008): how many bytes wait unwritten for a client that reads
  slower than we send, and dropping them so the close frame goes out next.

Nothing else in the project touches a private attribute of those libraries.
Under another server, or through Channels' `WebsocketCommunicator` in tests,
there is no daphne socket: `socket_of()` returns None and the consumer sends
through ASGI (no fast path, no byte-level shedding). If a new daphne, Twisted
or autobahn moves what this reads, `capabilities()` says so and the server
logs it loudly at start (`log_capabilities()`), rather than letting shedding
silently read 0.
"""

import functools
import inspect
import logging

logger = logging.getLogger(__name__)


class Outgoing:
    """One event on its way to many sockets: its text, and its WebSocket frame built once."""

    __slots__ = ("frame", "text")

    def __init__(self, text: str):
        self.text = text
        self.frame = None

    def prepared(self, factory):
        """The frame as autobahn sends it, shared by every socket of the process."""
        if self.frame is None:
            self.frame = factory.prepareMessage(self.text.encode())
        return self.frame


class DaphneSocket:
    """One client's WebSocket under daphne: its autobahn protocol and Twisted transport."""

    __slots__ = ("protocol",)

    def __init__(self, protocol):
        self.protocol = protocol

    def is_open(self) -> bool:
        return self.protocol.state == self.protocol.STATE_OPEN

    def is_connecting(self) -> bool:
        """The handshake is not answered yet (accept or refuse)."""
        return hasattr(self.protocol, "handshake_deferred")

    def refuse(self, status: int, reason: str) -> bool:
        """Answer the handshake with an HTTP error (as daphne's own 403, any status)."""
        from autobahn.websocket.types import ConnectionDeny

        deferred = getattr(self.protocol, "handshake_deferred", None)
        if deferred is None:
            return False
        del self.protocol.handshake_deferred
        deferred.errback(ConnectionDeny(code=status, reason=reason))
        self.protocol.server.protocol_disconnected(self.protocol)
        return True

    def is_gone(self) -> bool:
        """Closing or closed: nothing can be written any more."""
        return self.protocol.state in (self.protocol.STATE_CLOSING, self.protocol.STATE_CLOSED)

    def tcp(self):
        """The Twisted transport that owns the socket (behind any wrapper), or None."""
        transport = getattr(self.protocol, "transport", None)
        for _ in range(3):
            if transport is None or hasattr(transport, "_tempDataLen"):
                return transport
            transport = getattr(transport, "transport", None)
        return None

    def unwritten_bytes(self) -> int:
        """Bytes buffered for this client, waiting for it to read."""
        tcp = self.tcp()
        if tcp is None:
            return 0
        return len(tcp.dataBuffer) - tcp.offset + tcp._tempDataLen

    def discard_unsent(self) -> int:
        """
        Drop the writes the transport has not started on (whole frames), so that a
        close frame written next is the next thing the client reads after what is
        already in flight. Returns the bytes dropped; the client recovers them by
        offset when it reconnects.
        """
        tcp = self.tcp()
        if tcp is None:
            return 0
        dropped = tcp._tempDataLen
        tcp._tempDataBuffer = []
        tcp._tempDataLen = 0
        return dropped

    def write_event(self, event: Outgoing) -> None:
        """Write an event's shared frame: with one send() when nothing is queued."""
        prepared = event.prepared(self.protocol.factory)
        compressing = getattr(self.protocol, "_perMessageCompress", None) is not None
        if compressing or not self.write_now(prepared.payloadHybi):
            self.protocol.sendPreparedMessage(prepared)

    def write_now(self, data: bytes) -> bool:
        """
        Write `data` at once when nothing is queued before it: one send() instead of
        Twisted's register-writer, send, unregister-writer round (three system calls
        per socket per event, the top of the fan-out profile). What the kernel does
        not take stays queued, as Twisted would keep it. False when the transport is
        not one we know or has data queued: the caller uses autobahn's own send.
        """
        tcp = self.tcp()
        if (
            tcp is None
            or not tcp.connected
            or tcp.disconnecting
            or tcp._tempDataLen
            or len(tcp.dataBuffer) > tcp.offset
            or not hasattr(tcp, "writeSomeData")
        ):
            return False
        sent = tcp.writeSomeData(data)
        if isinstance(sent, int) and sent < len(data):
            # The rest of this frame is in flight, as Twisted keeps a partly sent
            # write: in dataBuffer, never among the whole writes discard_unsent drops.
            tcp.dataBuffer = data[sent:]
            tcp.offset = 0
            tcp.startWriting()
        return True


def socket_of(send) -> DaphneSocket | None:
    """The daphne socket behind an ASGI `send`, or None (another server, a test client)."""
    real_send = getattr(getattr(send, "__self__", None), "real_send", None)
    if real_send is not None:  # Channels' session middleware wraps send
        send = real_send
    if isinstance(send, functools.partial) and send.args:
        protocol = send.args[0]
        if hasattr(protocol, "sendPreparedMessage") and hasattr(protocol, "factory"):
            return DaphneSocket(protocol)
    return None


async def refuse_handshake(send, status: int, reason: str) -> None:
    """
    Refuse a WebSocket handshake with HTTP `status` (503 during an outage).
    ASGI only lets an application refuse with 403; daphne's socket can say more.
    Elsewhere (a test client, another server) it is ASGI's plain refusal.
    """
    wire = socket_of(send)
    if wire is None or not wire.refuse(status, reason):
        await send({"type": "websocket.close"})


def limit_header_time(http_factory, reactor, seconds: float) -> None:
    """
    Give every HTTP request `seconds` to send its headers (daphne has no such
    deadline: a client dripping a header line now and then would hold its
    connection for ever). Wraps the factory daphne listens with; after each
    response the next request on the connection gets a deadline of its own.
    """
    build = http_factory.buildProtocol

    def build_with_deadline(addr):
        protocol = build(addr)
        channel = getattr(protocol, "_channel", protocol)
        deadline = None

        def arm():
            nonlocal deadline
            deadline = reactor.callLater(seconds, cut)

        def cut():
            if channel.transport is not None:
                channel.transport.abortConnection()

        def headers_in():
            if deadline is not None and deadline.active():
                deadline.cancel()
            return all_headers_received()

        def response_done(request):
            done = request_done(request)
            if channel.transport is not None and not channel.transport.disconnecting:
                arm()
            return done

        def lost(reason):
            if deadline is not None and deadline.active():
                deadline.cancel()
            return connection_lost(reason)

        all_headers_received = channel.allHeadersReceived
        request_done = channel.requestDone
        connection_lost = channel.connectionLost
        channel.allHeadersReceived = headers_in
        channel.requestDone = response_done
        channel.connectionLost = lost
        arm()
        return protocol

    http_factory.buildProtocol = build_with_deadline


def capabilities() -> dict[str, bool]:
    """
    Whether the installed daphne, autobahn and Twisted still have what this
    module reads: `fast_path` (the shared prepared frame, the direct write) and
    `shedding` (the unwritten byte count and discarding it).
    """
    try:
        from autobahn.websocket.protocol import WebSocketProtocol, WebSocketServerFactory
        from daphne.server import Server
        from twisted.internet import abstract, tcp
    except ImportError:
        return {"fast_path": False, "shedding": False}
    # daphne hands each application `partial(self.handle_reply, protocol)` as `send`.
    send_is_partial = "partial(self.handle_reply, protocol)" in inspect.getsource(
        Server.create_application
    )
    buffers = "_tempDataLen" in inspect.getsource(abstract.FileDescriptor.__init__) and all(
        hasattr(abstract.FileDescriptor, name) for name in ("dataBuffer", "offset")
    )
    fast_path = (
        send_is_partial
        and buffers
        and hasattr(WebSocketServerFactory, "prepareMessage")
        and hasattr(WebSocketProtocol, "sendPreparedMessage")
        and all(hasattr(WebSocketProtocol, f"STATE_{s}") for s in ("OPEN", "CLOSING", "CLOSED"))
        and hasattr(tcp.Connection, "writeSomeData")
    )
    from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocket

    refusing = send_is_partial and "self.handshake_deferred.errback" in inspect.getsource(
        DaphneWebSocket.serverReject
    )
    return {
        "fast_path": fast_path,
        "shedding": send_is_partial and buffers,
        "refusing with a status": refusing,
    }


def log_capabilities() -> dict[str, bool]:
    """Say once, at server start, whether the fast path and shedding are active."""
    found = capabilities()
    if all(found.values()):
        logger.info(
            "transport: fast path, slow-consumer shedding and handshake refusals active (daphne)"
        )
    else:
        logger.error(
            "transport: INACTIVE %s: the installed daphne/autobahn/Twisted no longer "
            "have what realtime.gateway.transport reads; events go out one ASGI message "
            "per socket and slow consumers are NOT shed with 4008",
            ", ".join(name for name, active in found.items() if not active),
        )
    return found
