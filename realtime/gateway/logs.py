"""
Logs a machine can filter: with LOG_FORMAT=json each line is one JSON object
(time, level, logger, message, and where they exist the connection id, user
id, topic and request `ref` of what is being handled); in plain text the same
context follows the message. The context lives in context variables that the
consumer sets for its socket and for each frame.

`LogLimiter` keeps a client from flooding the log: one line per kind of
refusal per connection per minute at most.
"""

import json
import logging
import time
from contextvars import ContextVar

connection_id: ContextVar[str | None] = ContextVar("connection_id", default=None)
user_id: ContextVar[int | None] = ContextVar("user_id", default=None)
topic: ContextVar[str | None] = ContextVar("topic", default=None)
ref: ContextVar[str | None] = ContextVar("ref", default=None)
CONTEXT = {"connection_id": connection_id, "user_id": user_id, "topic": topic, "ref": ref}


class ContextFilter(logging.Filter):
    """Adds the context variables to every record (and `context`, a text suffix)."""

    def filter(self, record: logging.LogRecord) -> bool:
        found = {}
        for name, variable in CONTEXT.items():
            value = variable.get()
            setattr(record, name, value)
            if value is not None:
                found[name] = value
        record.context = "".join(f" {k}={v}" for k, v in found.items())
        return True


class ClientErrorFilter(logging.Filter):
    """
    A 4xx is the client's mistake, not the server's: Django logs a 403 with the
    PermissionDenied traceback; keep its one line, drop the traceback. A 5xx
    keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and record.exc_info:
            record.exc_info = None
            record.exc_text = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)

    converter = time.gmtime


class LogLimiter:
    """At most one line per kind per `seconds` (per connection: one limiter each)."""

    def __init__(self, seconds: float = 60.0, clock=time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self.last: dict[str, float] = {}

    def allow(self, kind: str) -> bool:
        now = self.clock()
        if now - self.last.get(kind, -self.seconds) < self.seconds:
            return False
        self.last[kind] = now
        return True
