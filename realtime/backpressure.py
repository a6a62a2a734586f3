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
    transport = getattr(protocol, "transport", None)
    for _ in range(3):  # a ProtocolWrapper (timeouts, TLS) holds the real transport
        if transport is None or hasattr(transport, "_tempDataLen"):
            break
        transport = getattr(transport, "transport", None)
    if transport is None or not hasattr(transport, "_tempDataLen"):
        return 0
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def discard_unsent(protocol) -> int:
    """
    Drop the writes the transport has not started on (whole frames), so that a
    close frame written next is the next thing the client reads after what is
    already in flight. Returns the bytes dropped; the client recovers them by
    offset when it reconnects.
    """
    transport = getattr(protocol, "transport", None)
    for _ in range(3):
        if transport is None or hasattr(transport, "_tempDataBuffer"):
            break
        transport = getattr(transport, "transport", None)
    if transport is None or not hasattr(transport, "_tempDataBuffer"):
        return 0
    dropped = transport._tempDataLen
    transport._tempDataBuffer = []
    transport._tempDataLen = 0
    return dropped
