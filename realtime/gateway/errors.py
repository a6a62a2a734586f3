"""Refusals with the error codes of PROTOCOL.md, raised by services, answered by callers."""


class RealtimeError(Exception):
    """A request refused with one of PROTOCOL.md's error codes."""

    code = "server_error"
    # Milliseconds after which the same request may succeed (rate limits, outages).
    retry_after_ms: int | None = None

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadMessage(RealtimeError):
    code = "bad_message"


class UnknownTopic(RealtimeError):
    code = "unknown_topic"


class NotFound(RealtimeError):
    code = "not_found"


class Forbidden(RealtimeError):
    code = "forbidden"


class Invalid(RealtimeError):
    code = "invalid"


class TooManySubscriptions(RealtimeError):
    code = "too_many_subscriptions"


class Unavailable(RealtimeError):
    """The database or the broker is down for now: nothing was stored; try again later."""

    code = "unavailable"

    def __init__(self, message: str, *, retry_after_ms: int = 1000):
        super().__init__(message)
        self.retry_after_ms = retry_after_ms
