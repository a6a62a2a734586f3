"""Rate limits on their own, with a fake clock: the token bucket and the flood rule."""

from realtime.gateway.ratelimit import FloodMeter, TokenBucket


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_frames_wait_for_tokens():
    clock = Clock()
    bucket = TokenBucket(burst=3, rate=2.0, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == 500  # one token back in half a second


def test_tokens_come_back_at_the_sustained_rate_up_to_the_burst():
    clock = Clock()
    bucket = TokenBucket(burst=2, rate=10.0, clock=clock)
    bucket.take()
    bucket.take()
    clock.now += 0.15  # one and a half tokens back
    assert bucket.take() == 0
    assert bucket.take() > 0
    clock.now += 60  # a long pause refills to the burst, no further
    assert bucket.take() == 0
    assert bucket.take() == 0
    assert bucket.take() > 0


def test_the_retry_hint_is_never_zero_while_limited():
    clock = Clock()
    bucket = TokenBucket(burst=1, rate=1000.0, clock=clock)
    bucket.take()
    assert bucket.take() >= 1


def test_flooding_is_the_limit_of_drops_within_the_window():
    clock = Clock()
    meter = FloodMeter(limit=3, window=10.0, clock=clock)
    assert meter.drop() is False
    assert meter.drop() is False
    assert meter.drop() is True


def test_drops_older_than_the_window_do_not_count():
    clock = Clock()
    meter = FloodMeter(limit=3, window=10.0, clock=clock)
    meter.drop()
    meter.drop()
    clock.now += 10.5
    assert meter.drop() is False
    assert meter.drop() is False
    assert meter.drop() is True
