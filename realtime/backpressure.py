"""
How much a socket has not yet written: the bytes waiting in daphne's Twisted
transport for a client that reads slower than we send. ASGI hides the
transport, so this looks behind daphne's `send` callable; elsewhere (tests
through WebsocketCommunicator, another server) there is none and the backlog
reads as 0.
"""

import functools


def daphne_protocol(send):
    """daphne's protocol object behind an ASGI `send`, or None."""
    real_send = getattr(getattr(send, "__self__", None), "real_send", None)
    if real_send is not None:  # Channels' session middleware wraps send
        send = real_send
    if isinstance(send, functools.partial) and send.args:
        return send.args[0]
    return None


def unwritten_bytes(protocol) -> int:
    """Bytes buffered in the protocol's transport, waiting for the client to read."""
    transport = socket_transport(protocol)
    if transport is None:
        return 0
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def discard_unsent(protocol) -> int:
    """
    Drop the writes the transport has not started on (whole frames), so that a
    close frame written next is the next thing the client reads after what is
    already in flight. Returns the bytes dropped; the client recovers them by
    offset when it reconnects.
    """
    transport = socket_transport(protocol)
    if transport is None:
        return 0
    dropped = transport._tempDataLen
    transport._tempDataBuffer = []
    transport._tempDataLen = 0
    return dropped


def socket_transport(protocol):
    """The Twisted transport that owns the socket (behind any wrapper), or None."""
    transport = getattr(protocol, "transport", None)
    for _ in range(3):
        if transport is None or hasattr(transport, "_tempDataLen"):
            return transport
        transport = getattr(transport, "transport", None)
    return None


def write_now(protocol, data: bytes) -> bool:
    """
    Write `data` to the socket at once when nothing is queued before it: one
    send() instead of Twisted's register-writer, send, unregister-writer round
    (three system calls per socket per event, the top of the fan-out profile).
    What the kernel does not take stays queued, as Twisted would keep it. False
    when the transport is not one we know or has data queued: use its write().
    """
    transport = socket_transport(protocol)
    if (
        transport is None
        or not transport.connected
        or transport.disconnecting
        or transport._tempDataLen
        or len(transport.dataBuffer) > transport.offset
        or not hasattr(transport, "writeSomeData")
    ):
        return False
    sent = transport.writeSomeData(data)
    if isinstance(sent, int) and sent < len(data):
        # The rest of this frame is in flight, as Twisted keeps a partly sent
        # write: in dataBuffer, never among the whole writes discard_unsent drops.
        transport.dataBuffer = data[sent:]
        transport.offset = 0
        transport.startWriting()
    return True
