"""Per-connection token bucket, and the flood rule that ends a connection (4429)."""

import time
from collections import deque


class TokenBucket:
    """`burst` tokens, refilled at `rate` a second; each frame takes one."""

    def __init__(self, *, burst: int, rate: float, clock=time.monotonic):
        self.burst = burst
        self.rate = rate
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self) -> int:
        """0 when the frame may pass, else milliseconds until a token is back."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0
        return max(1, int((1 - self.tokens) / self.rate * 1000 + 0.999))


class FloodMeter:
    """Counts dropped frames; `flooding` once `limit` fell within `window` seconds."""

    def __init__(self, *, limit: int, window: float, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        # Made at the first drop: an empty deque is 600 bytes on every idle socket.
        self.drops: deque[float] | None = None

    def drop(self) -> bool:
        now = self.clock()
        if self.drops is None:
            self.drops = deque()
        self.drops.append(now)
        while self.drops and self.drops[0] <= now - self.window:
            self.drops.popleft()
        return len(self.drops) >= self.limit
