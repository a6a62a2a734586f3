"""
Metrics in Prometheus' format (the official `prometheus_client`, multiprocess
mode): every daphne process of a machine writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (set in settings, before this module is imported),
and a scrape of `/metrics` on any of them answers for all of them, each
counted once. docs/operations.md explains every metric and the alerts.

Names follow Prometheus' conventions: `_total` counters, base units
(seconds), labels with few values.
"""

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

connections = Gauge(
    "realtime_connections",
    "Open WebSocket connections (past the handshake).",
    ["kind"],  # authenticated, anonymous
    multiprocess_mode="livesum",
)
handshakes = Counter(
    "realtime_handshakes_total",
    "WebSocket handshakes by outcome.",
    ["outcome"],  # accepted, origin_refused, over_cap, unavailable
)
frames_in = Counter(
    "realtime_frames_in_total",
    "Client frames received, by type (`invalid` for frames refused before their type is known).",
    ["type"],
)
errors = Counter("realtime_errors_total", "`error` frames sent, by code.", ["code"])
closes = Counter("realtime_closes_total", "Connections closed, by close code.", ["code"])
subscriptions = Gauge(
    "realtime_subscriptions",
    "Current subscriptions, by topic family.",
    ["family"],
    multiprocess_mode="livesum",
)
publishes = Counter(
    "realtime_publishes_total", "Publications stored or handed over, by topic family.", ["family"]
)
publish_seconds = Histogram(
    "realtime_publish_seconds",
    "Time to store one batch of publications (group commit), before its commit.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
publish_batch_size = Histogram(
    "realtime_publish_batch_size",
    "Publications stored together in one transaction (group commit).",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
deliveries = Counter("realtime_deliveries_total", "Events written (or queued) to sockets.")
delivery_lag_seconds = Histogram(
    "realtime_delivery_lag_seconds",
    "From a publication's commit to its fan-out on this process.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
shed = Counter("realtime_slow_consumers_shed_total", "Sockets closed with 4008 for not keeping up.")
replay_events = Histogram(
    "realtime_replay_events",
    "Events replayed by one subscribe with `since`.",
    buckets=(0, 1, 10, 100, 1000),
)
backend_failures = Counter(
    "realtime_backend_failures_total",
    "Failed calls to what the gateway depends on.",
    ["backend"],  # database, channel_layer, redis
)
database_calls = Gauge(
    "realtime_database_calls_in_flight",
    "Database calls waiting for or running on the process's database thread.",
    multiprocess_mode="livesum",
)
reaped = Counter("realtime_processes_reaped_total", "Dead processes whose live state was reaped.")


def exposition() -> bytes:
    """Every process's samples (of this machine), in the text format."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def process_exited(pid: int | None = None) -> None:
    """Drop a process's live gauges (it exited, or was reaped dead)."""
    multiprocess.mark_process_dead(pid or os.getpid())


def forget_dead_processes() -> list[int]:
    """At a process's start: drop the live gauges of processes that no longer run."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    dead = set()
    for name in os.listdir(folder) if folder else ():
        pid = name.rsplit("_", 1)[-1].removesuffix(".db")
        if name.startswith("gauge_live") and pid.isdigit() and not process_alive(int(pid)):
            dead.add(int(pid))
    for pid in dead:
        process_exited(pid)
    return sorted(dead)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def totals() -> dict[str, float]:
    """A few machine-wide counters, for the staff dashboard (the same the scrape reads)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    wanted = {
        "realtime_publishes_total": "publishes",
        "realtime_deliveries_total": "deliveries",
        "realtime_errors_total": "errors",
        "realtime_slow_consumers_shed_total": "shed",
        "realtime_backend_failures_total": "backend_failures",
    }
    found = dict.fromkeys(wanted.values(), 0.0)
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in wanted:
                found[wanted[sample.name]] += sample.value
    return found
