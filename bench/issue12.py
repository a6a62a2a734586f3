"""
The scenarios of issue 12, in the fan-out bench's framework (bench/run.py):

- `publish`: many publisher sockets of distinct users publish at a steady
  offered rate (or, `-max`, each keeping a window of unacked publishes) into
  one room or spread over many; a few subscriber sockets check that every
  acked event arrives, in offset order, without gaps. Figures: acked
  publishes/s against offered, ack latency (send to ack), errors by code.
- `handshake`: distinct users with sessions open authenticated sockets at an
  offered rate or as fast as a concurrency bound allows. Figures: handshakes/s
  and the latency from TCP connect to `welcome`.
- `storm`: sockets in rooms on two processes on Redis; a steady publisher on
  the process that stays; the other process gets SIGTERM and is restarted on
  the same port at once. Figures: time until every client is back, resubscribed
  and recovered; events lost; duplicates; reconnect attempts.

Each row also carries the storage's own rate for the same kind of work,
measured in the same run on the same machine (`storage_*` below), so the
ratio of the project's figure to the storage's is visible.
"""

import asyncio
import sqlite3
import time
import uuid
from array import array

from bench import run as base
from bench import traffic

# Targets of the issue, printed beside the figures (not checked).
TARGETS = {
    "pg-1p-publish-1room": "≥2,000 acked/s, p99 < 100 ms",
    "pg-1p-publish-100rooms": "≥3,000 acked/s",
    "sqlite-1p-publish-1room": "≥1,000 acked/s",
    "pg-1p-handshake-max": "≥1,000/s",
    "pg-1p-handshake-500ps": "p99 < 200 ms at 500/s",
    "pg-1p-handshake-warm-max": "≥1,000/s",
    "pubsub-2p-storm": "all back and recovered < 15 s, 0 lost",
}


def issue12_scenarios(args) -> list:
    """The issue 12 scenarios with their sizes from the command line."""
    S = base.Scenario
    out = []
    for storage, rooms, publishers in (
        ("pg", 1, args.publishers),
        ("pg", 100, args.publishers_100rooms),
        ("sqlite", 1, args.publishers),
    ):
        label = f"{storage}-1p-publish-{rooms}room{'s' if rooms > 1 else ''}"
        common = dict(storage=storage, rooms=rooms, duration=args.publish_seconds)
        out.append(
            S("memory", 1, "publish", publishers, rate=args.publish_rate, label=label, **common)
        )
        out.append(S("memory", 1, "publish", publishers, rate=None, label=label + "-max", **common))
    out.append(S("memory", 1, "handshake", args.handshakes, rate=None, label="pg-1p-handshake-max"))
    out.append(
        S(
            "memory",
            1,
            "handshake",
            args.handshakes,
            rate=None,
            warm=True,
            label="pg-1p-handshake-warm-max",
        )
    )
    rate = args.handshake_rate
    out.append(
        S("memory", 1, "handshake", args.handshakes, rate=rate, label=f"pg-1p-handshake-{rate:g}ps")
    )
    out.append(
        S(
            "pubsub",
            2,
            "storm",
            args.storm_clients,
            rate=args.storm_rate,
            rooms=args.storm_rooms,
            label="pubsub-2p-storm",
        )
    )
    return out


def users_needed(scenario, args) -> int:
    if scenario.kind == "publish":
        return scenario.clients + args.publish_subscribers
    if scenario.kind == "storm":
        return scenario.clients + args.storm_publishers
    return scenario.clients


def add_arguments(parser) -> None:
    group = parser.add_argument_group("issue 12 scenarios (publish, handshake, storm)")
    group.add_argument("--publishers", type=int, default=200, help="publisher sockets, one room")
    group.add_argument(
        "--publishers-100rooms", type=int, default=300, help="publisher sockets, 100 rooms"
    )
    group.add_argument(
        "--publish-rate", type=float, default=10.0, help="publishes/s offered by each socket"
    )
    group.add_argument("--publish-seconds", type=float, default=10.0, help="publishing time")
    group.add_argument(
        "--publish-window",
        type=int,
        default=4,
        help="unacked publishes per socket in the -max (ceiling) scenarios, which run "
        "with the per-connection rate limit lifted (the rated ones keep the server's)",
    )
    group.add_argument(
        "--publish-subscribers", type=int, default=10, help="sockets that check the events"
    )
    group.add_argument("--handshakes", type=int, default=5000, help="sockets of distinct users")
    group.add_argument(
        "--handshake-rate", type=float, default=500.0, help="offered handshakes/s (rated)"
    )
    group.add_argument(
        "--handshake-concurrency",
        type=int,
        default=50,
        help="handshakes in flight per worker in pg-1p-handshake-max",
    )
    group.add_argument("--storm-clients", type=int, default=5000, help="sockets of the storm")
    group.add_argument("--storm-rooms", type=int, default=50, help="rooms of the storm")
    group.add_argument(
        "--storm-rate", type=float, default=50.0, help="publishes/s into the storm's rooms, total"
    )
    group.add_argument(
        "--storm-publishers", type=int, default=5, help="publisher sockets during the storm"
    )
    group.add_argument(
        "--storm-timeout", type=float, default=60.0, help="bound on the storm's recovery"
    )
    group.add_argument(
        "--storage-seconds",
        type=float,
        default=2.0,
        help="time of each measurement of the storage's own rate",
    )
    for action in group._group_actions:  # the issue's sizes are the defaults: show them
        action.help += " (default: %(default)s)"


# The storage's own rates -------------------------------------------------------------

SCRATCH_COLUMNS = (
    'topic varchar(100) NOT NULL, "offset" bigint NOT NULL, data {json} NOT NULL, '
    "created_at {ts} NOT NULL, publisher_id integer NULL, client_id varchar(64) NULL, "
    'UNIQUE (topic, "offset")'
)


def _timed(seconds: float, step) -> float:
    """Call step() (which does `n` operations and returns n) for `seconds`; ops/s."""
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        count += step()
    return count / max(1e-9, elapsed)


def storage_insert_rates(database, seconds: float) -> dict:
    """Single-row INSERT transactions/s from one connection, and rows/s in
    transactions of 50, into a scratch table shaped like the event log."""
    row = ('{"text": "bench 1234567890.123456 12345"}', 1)
    if isinstance(database, base.SqliteDatabase):
        connection = sqlite3.connect(database.path, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        table = f"bench_scratch_{uuid.uuid4().hex[:8]}"
        columns = SCRATCH_COLUMNS.format(json="text", ts="text")
        connection.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, {columns})")
        sql = (
            f'INSERT INTO {table} (topic, "offset", data, created_at, publisher_id) '
            "VALUES (?, ?, ?, datetime('now'), ?)"
        )
        offset = [0]

        def single():
            offset[0] += 1
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(sql, ("room:x", offset[0], *row))
            connection.execute("COMMIT")
            return 1

        def batch():
            connection.execute("BEGIN IMMEDIATE")
            for _ in range(50):
                offset[0] += 1
                connection.execute(sql, ("room:x", offset[0], *row))
            connection.execute("COMMIT")
            return 50

        try:
            return {"tx_per_s": _timed(seconds, single), "rows_per_s_50": _timed(seconds, batch)}
        finally:
            connection.execute(f"DROP TABLE {table}")
            connection.close()
    import psycopg

    with psycopg.connect(database.url, autocommit=True) as connection:
        table = f"bench_scratch_{uuid.uuid4().hex[:8]}"
        columns = SCRATCH_COLUMNS.format(json="jsonb", ts="timestamptz")
        connection.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, {columns})")
        sql = (
            f'INSERT INTO {table} (topic, "offset", data, created_at, publisher_id) '
            "VALUES (%s, %s, %s, now(), %s)"
        )
        offset = [0]

        def single():
            offset[0] += 1
            connection.execute(sql, ("room:x", offset[0], *row), prepare=True)
            return 1

        def batch():
            with connection.transaction():
                for _ in range(50):
                    offset[0] += 1
                    connection.execute(sql, ("room:x", offset[0], *row), prepare=True)
            return 50

        try:
            return {"tx_per_s": _timed(seconds, single), "rows_per_s_50": _timed(seconds, batch)}
        finally:
            connection.execute(f"DROP TABLE {table}")


def storage_handshake_rate(database, seconds: float) -> float:
    """What a handshake asks the database: the session row by primary key, then the
    user row by primary key (from one connection): pairs/s."""
    import psycopg

    with psycopg.connect(database.url, autocommit=True) as connection:
        sessions = [r[0] for r in connection.execute("SELECT session_key FROM django_session")]
        users = [r[0] for r in connection.execute("SELECT id FROM realtime_user")]
        i = [0]

        def step():
            i[0] += 1
            connection.execute(
                "SELECT session_key, session_data, expire_date FROM django_session "
                "WHERE session_key = %s AND expire_date > now()",
                (sessions[i[0] % len(sessions)],),
                prepare=True,
            ).fetchone()
            connection.execute(
                "SELECT * FROM realtime_user WHERE id = %s",
                (users[i[0] % len(users)],),
                prepare=True,
            ).fetchone()
            return 1

        return _timed(seconds, step)


def storage_replay_rate(database, topics: list[str], seconds: float) -> float:
    """A recovery's query: a topic's retained events after an offset (the last 20), per s."""
    import psycopg

    with psycopg.connect(database.url, autocommit=True) as connection:
        i = [0]

        def step():
            i[0] += 1
            topic = topics[i[0] % len(topics)]
            connection.execute(
                'SELECT id, topic, "offset", data, created_at FROM realtime_event '
                'WHERE topic = %s AND "offset" > (SELECT coalesce(max("offset"), 0) - 20 '
                'FROM realtime_event WHERE topic = %s) ORDER BY "offset" LIMIT 1000',
                (topic, topic),
                prepare=True,
            ).fetchall()
            return 1

        return _timed(seconds, step)


def pg_activity(database) -> dict | None:
    """The bench database's commits and row counts (pg_stat_database; PostgreSQL
    publishes a backend's counts within about a second)."""
    if isinstance(database, base.SqliteDatabase):
        return None
    import psycopg

    with psycopg.connect(database.url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_fetched "
            "FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return dict(zip(("commits", "inserted", "updated", "fetched"), row, strict=True))


# Helpers -------------------------------------------------------------------------------


def latency_figures(raw: list[bytes], prefix: str) -> dict:
    values = array("d")
    for chunk in raw:
        values.frombytes(chunk)
    values = sorted(values)
    if not values:
        return {}
    return {
        f"{prefix}_p50_ms": base.percentile(values, 0.5) * 1000,
        f"{prefix}_p95_ms": base.percentile(values, 0.95) * 1000,
        f"{prefix}_p99_ms": base.percentile(values, 0.99) * 1000,
        f"{prefix}_max_ms": values[-1] * 1000,
    }


def add_counts(into: dict, more: dict) -> dict:
    for key, value in more.items():
        into[str(key)] = into.get(str(key), 0) + value
    return into


def cpu_figures(cpu: dict) -> dict:
    return {
        "server_cores": cpu["server"] / cpu["elapsed"],
        "loadgen_cores": cpu["loadgen"] / cpu["elapsed"],
        "postgres_cores": cpu["postgres_cores"],
        "redis_cores": cpu["redis_cores"],
        "machine_busy_pct": cpu["machine_busy"] * 100,
    }


def spread(targets: list, workers: int) -> list[list]:
    out = [[] for _ in range(workers)]
    for i, target in enumerate(targets):
        out[i % workers].append(target)
    return out


def new_result(scenario):
    return base.Result(
        scenario.name,
        scenario.layer,
        scenario.processes,
        scenario.kind,
        scenario.clients,
        rate=scenario.rate,
    )


async def follow(workers, targets, reconnect, args, result) -> None:
    """Connect and subscribe followers [(port, cookie, [topics])] across the workers."""
    per_worker = [
        {"targets": t, "reconnect": reconnect, "concurrency": args.concurrency, "wait_s": 30}
        for t in spread(targets, len(workers))
    ]
    replies = await base.call_all(workers, "follow", args.phase_timeout, per_worker=per_worker)
    failed = sum(r["failed"] for r in replies)
    if failed:
        samples = [f for r in replies for f in r["failures"]][:2]
        raise RuntimeError(f"{failed} subscriber sockets failed: {samples}")
    result.connected = sum(r["ok"] for r in replies)


async def follow_report(workers, expected: dict, args) -> dict:
    deadline = time.time() + args.drain_timeout
    replies = await base.call_all(
        workers, "follow_report", args.drain_timeout + 30, expected=expected, deadline=deadline
    )
    merged = {"lost": {}, "closes": {}}
    for r in replies:
        for topic, offsets in r["lost"].items():
            merged["lost"].setdefault(topic, set()).update(offsets)
        add_counts(merged["closes"], r["closes"])
        for key in (
            "lost_deliveries",
            "received",
            "duplicates",
            "gaps",
            "errors",
            "closed",
            "not_recovered",
            "attempts",
            "failed_attempts",
        ):
            merged[key] = merged.get(key, 0) + r[key]
        for key in ("closed_at", "back_at", "resubscribed_at", "recovered_at", "error_samples"):
            merged.setdefault(key, []).extend(r[key])
    merged["lost_events"] = sum(len(o) for o in merged["lost"].values())
    return merged


# Scenarios -------------------------------------------------------------------------


def topics_of(scenario, start: int) -> list[str]:
    return [f"room:q{start + i}" for i in range(scenario.rooms)]


async def run_publish(scenario, servers, workers, fixtures, args, meter, database, first_room):
    """Publisher sockets of distinct users at a steady rate (or a window each);
    a few subscriber sockets check every acked event arrives in order."""
    result = new_result(scenario)
    topics = topics_of(scenario, first_room)
    cookies = fixtures["cookies"]
    port = servers.ports[0]
    n, s = scenario.clients, args.publish_subscribers
    followers = []
    for j in range(s):
        mine = [topics[j % len(topics)]] if len(topics) <= s else topics[j::s]
        followers.append((port, cookies[n + j], mine))
    await follow(workers, followers, False, args, result)

    publishers = [(port, cookies[i], [topics[i % len(topics)]]) for i in range(n)]
    window = None if scenario.rate else args.publish_window
    per_worker = [
        {
            "targets": t,
            "rate": scenario.rate,
            "duration": scenario.duration,
            "window": window,
            "wait_s": 30,
        }
        for t in spread(publishers, len(workers))
    ]
    await asyncio.sleep(1.0)  # the subscriptions' own counts reach pg_stat_database
    activity = await asyncio.to_thread(pg_activity, database)
    start = meter.snapshot()
    replies = await base.call_all(
        workers, "publish", args.phase_timeout + scenario.duration, per_worker=per_worker
    )
    end = meter.snapshot()
    first = min(r["first_sent"] for r in replies)
    last_sent = max(r["last_sent"] for r in replies)
    last_ack = max(r["last_ack_at"] for r in replies)
    acks = sum(r["acks"] for r in replies)
    expected: dict[str, int] = {}
    errors: dict[str, int] = {}
    for r in replies:
        add_counts(errors, r["errors"])
        for topic, offset in r["max_offset"].items():
            expected[topic] = max(offset, expected.get(topic, 0))
    checked = await follow_report(workers, expected, args)
    await base.call_all(workers, "release", 60, wait_s=10)
    await asyncio.sleep(1.0)
    after = await asyncio.to_thread(pg_activity, database)

    f = result.figures
    if activity and after and acks:
        # Per acked publish: transactions (autocommit reads included) and rows written.
        f["commits_per_ack"] = (after["commits"] - activity["commits"]) / acks
        f["rows_written_per_ack"] = (
            after["inserted"] + after["updated"] - activity["inserted"] - activity["updated"]
        ) / acks
    f["publishers"] = n
    f["rooms"] = len(topics)
    f["offered_per_s"] = n * scenario.rate if scenario.rate else None
    f["window"] = window
    f["sent_per_s"] = sum(r["sent"] for r in replies) / max(1e-9, last_sent - first)
    f["acks"] = acks
    f["acked_per_s"] = acks / max(1e-9, last_ack - first) if acks else 0.0
    f["unanswered"] = sum(r["unanswered"] for r in replies)
    f["errors"] = errors
    f.update(latency_figures([r["latencies"] for r in replies], "ack"))
    f["subscribers"] = s
    f["lost_events"] = checked["lost_events"]
    f["gaps"] = checked["gaps"]
    f["duplicates"] = checked["duplicates"]
    f.update(cpu_figures(base.Meter.delta(start, end)))
    if errors:
        result.notes.append(f"publish errors: {[r['error_samples'][:1] for r in replies][:2]}")
    if checked["error_samples"]:
        result.notes.append(f"subscriber error: {checked['error_samples'][0]}")
    rates = await asyncio.to_thread(storage_insert_rates, database, args.storage_seconds)
    f["storage_tx_per_s"] = rates["tx_per_s"]
    f["storage_rows_per_s_50"] = rates["rows_per_s_50"]
    return result


async def run_handshake(scenario, servers, workers, fixtures, args, meter, database):
    """Distinct users open authenticated sockets at a rate, or as fast as allowed."""
    result = new_result(scenario)
    cookies = fixtures["cookies"]
    port = servers.ports[0]
    # Warm up (imports, pools), then close.
    await base.call_all(
        workers[:1],
        "handshake",
        60,
        targets=[(port, cookies[-1])],
        rate=None,
        concurrency=1,
        wait_s=30,
    )
    await base.call_all(workers[:1], "release", 30, wait_s=5)
    targets = [(port, cookies[i]) for i in range(scenario.clients)]
    per_worker = [
        {
            "targets": t,
            "rate": scenario.rate / len(workers) if scenario.rate else None,
            "concurrency": args.handshake_concurrency,
            "wait_s": 30,
        }
        for t in spread(targets, len(workers))
    ]
    if scenario.warm:
        # The same users connected once before (as after a deploy or a network
        # blip): their sessions are in the session cache.
        await base.call_all(workers, "handshake", args.phase_timeout, per_worker=per_worker)
        await base.call_all(workers, "release", 60, wait_s=10)
    start = meter.snapshot()
    replies = await base.call_all(workers, "handshake", args.phase_timeout, per_worker=per_worker)
    end = meter.snapshot()
    await base.call_all(workers, "release", 60, wait_s=10)
    ok = sum(r["ok"] for r in replies)
    began = min(r["started"] for r in replies)
    done = max(r["done"] for r in replies)
    f = result.figures
    f["offered_per_s"] = scenario.rate
    f["ok"] = ok
    f["handshakes_per_s"] = ok / max(1e-9, done - began)
    f["failures"] = {}
    for r in replies:
        add_counts(f["failures"], r["failures"])
        result.notes += [f"handshake failed: {s}" for s in r["failure_samples"][:1]]
    f.update(latency_figures([r["handshake_times"] for r in replies], "welcome"))
    f.update(cpu_figures(base.Meter.delta(start, end)))
    result.connected = ok
    f["storage_lookups_per_s"] = await asyncio.to_thread(
        storage_handshake_rate, database, args.storage_seconds
    )
    return result


async def run_storm(scenario, servers, workers, fixtures, args, meter, database, first_room):
    """Sockets in rooms on two processes; SIGTERM one and restart it at once; every
    client of it must come back, resubscribe with `since` and recover, losing nothing."""
    result = new_result(scenario)
    topics = topics_of(scenario, first_room)
    cookies = fixtures["cookies"]
    ports = servers.ports
    stays, restarted = 0, 1
    n = scenario.clients
    followers = [(ports[i % 2], cookies[i], [topics[i % len(topics)]]) for i in range(n)]
    hit = sum(1 for i in range(n) if i % 2 == restarted)
    t0 = time.time()
    await follow(workers, followers, True, args, result)
    result.figures["connect_s"] = time.time() - t0

    # Publishers on the process that stays, within the per-connection rate limit.
    p = args.storm_publishers
    publishers = [traffic.RatePublisher() for _ in range(p)]
    await asyncio.gather(
        *(pub.open(ports[stays], cookies[n + j]) for j, pub in enumerate(publishers))
    )
    stop = asyncio.Event()
    per_socket = scenario.rate / p
    if per_socket > 15:
        result.notes.append(f"{per_socket:g} publishes/s per socket: above the rate limit (15/s)")
    runs = [
        asyncio.create_task(pub.run(topics[j::p] or topics, per_socket, None, stop=stop))
        for j, pub in enumerate(publishers)
    ]
    await asyncio.sleep(2.0)

    # CPU of the process that stays (the restarted one's pid changes midway).
    meter = base.Meter([servers.pids[stays]], meter.loadgen_pids, meter.redis_url)
    start = meter.snapshot()
    t_term = time.time()
    restart = await asyncio.to_thread(servers.restart, restarted)
    f = result.figures
    f["restart_listening_s"] = restart["listening"] - t_term
    f["restart_healthy_s"] = restart["healthy"] - t_term
    deadline = t_term + args.storm_timeout
    status = {}
    while time.time() < deadline:
        replies = await base.call_all(workers, "follow_status", 30)
        status = {k: sum(r[k] for r in replies) for k in replies[0]}
        if status["closed"] >= hit and status["recovered"] >= status["closed"]:
            break
        await asyncio.sleep(0.25)
    else:
        result.notes.append(f"storm timed out: {status}")
    await asyncio.sleep(1.0)  # a little live traffic after the storm
    stop.set()
    sent = await asyncio.gather(*runs)
    await asyncio.gather(*(pub.drain(30) for pub in publishers))
    end = meter.snapshot()
    published = traffic.merge_publishers(publishers, sent)
    for pub in publishers:
        pub.ws.close()
    checked = await follow_report(workers, published["max_offset"], args)
    await base.call_all(workers, "release", 60, wait_s=10)

    def since_term(key):
        values = checked[key]
        if not values or any(v is None for v in values):
            return None
        return max(values) - t_term

    f["clients"] = n
    f["rooms"] = len(topics)
    f["restarted_clients"] = hit
    f["closed"] = checked["closed"]
    f["back_s"] = since_term("back_at")
    f["resubscribed_s"] = since_term("resubscribed_at")
    f["recovered_s"] = since_term("recovered_at")
    f["not_back"] = sum(v is None for v in checked["back_at"])
    f["not_recovered"] = sum(v is None for v in checked["recovered_at"]) + checked["not_recovered"]
    f["published"] = published["acks"]
    f["publish_errors"] = published["errors"]
    f["lost_events"] = checked["lost_events"]
    f["lost_deliveries"] = checked["lost_deliveries"]
    f["duplicates"] = checked["duplicates"]
    f["gaps"] = checked["gaps"]
    f["attempts"] = checked["attempts"]
    f["failed_attempts"] = checked["failed_attempts"]
    f["closes"] = checked["closes"]
    f.update(cpu_figures(base.Meter.delta(start, end)))
    if checked["lost"]:
        sample = sorted(checked["lost"].items())[:2]
        result.notes.append(f"lost (topic: offsets): {[(t, sorted(o)[:5]) for t, o in sample]}")
    if checked["error_samples"]:
        result.notes.append(f"subscriber error: {checked['error_samples'][0]}")
    f["storage_lookups_per_s"] = await asyncio.to_thread(
        storage_handshake_rate, database, args.storage_seconds
    )
    f["storage_replays_per_s"] = await asyncio.to_thread(
        storage_replay_rate, database, topics, args.storage_seconds
    )
    return result


# Output ---------------------------------------------------------------------------------


def _ms(f, key):
    return base.fmt(f.get(key), "{:.1f}")


def _codes(counts: dict) -> str:
    return ", ".join(f"{k}×{v}" for k, v in sorted(counts.items())) or "-"


def _ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def _rows(header: str, rows: list[list[str]]) -> list[str]:
    out = [header, "|" + "---|" * header.count(" | ") + "---|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def table(results: list) -> list[str]:
    fmt = base.fmt
    out = []
    publish = [r for r in results if r.kind == "publish"]
    if publish:
        rows = []
        for r in publish:
            f = r.figures
            rows.append(
                [
                    r.scenario,
                    f"{f.get('publishers', r.clients):,}",
                    str(f.get("rooms", "-")),
                    fmt(f.get("offered_per_s"))
                    if f.get("offered_per_s")
                    else f"window {f.get('window')}",
                    fmt(f.get("acked_per_s")),
                    _ms(f, "ack_p50_ms"),
                    _ms(f, "ack_p95_ms"),
                    _ms(f, "ack_p99_ms"),
                    r.error or _codes(f.get("errors", {})),
                    f"{f.get('lost_events', '-')}/{f.get('gaps', '-')}/{f.get('duplicates', '-')}",
                    fmt(f.get("server_cores"), "{:.2f}"),
                    fmt(f.get("postgres_cores"), "{:.2f}"),
                    fmt(f.get("commits_per_ack"), "{:.3f}"),
                    fmt(f.get("rows_written_per_ack"), "{:.1f}"),
                    fmt(f.get("storage_tx_per_s")),
                    fmt(f.get("storage_rows_per_s_50")),
                    _ratio(f.get("acked_per_s"), f.get("storage_tx_per_s")),
                    TARGETS.get(r.scenario, "-"),
                ]
            )
        out += _rows(
            "| scenario | sockets | rooms | offered/s | acked/s | ack p50 ms | p95 ms | p99 ms | "
            "errors | lost/gaps/dup | server cores | postgres cores | pg xacts/ack | "
            "rows written/ack | storage 1-row tx/s | "
            "storage rows/s (tx of 50) | acked ÷ storage tx | target |",
            rows,
        )
    handshake = [r for r in results if r.kind == "handshake"]
    if handshake:
        rows = []
        for r in handshake:
            f = r.figures
            rows.append(
                [
                    r.scenario,
                    f"{r.clients:,}",
                    fmt(f.get("offered_per_s")) if f.get("offered_per_s") else "max",
                    fmt(f.get("handshakes_per_s")),
                    _ms(f, "welcome_p50_ms"),
                    _ms(f, "welcome_p95_ms"),
                    _ms(f, "welcome_p99_ms"),
                    _ms(f, "welcome_max_ms"),
                    r.error or _codes(f.get("failures", {})),
                    fmt(f.get("server_cores"), "{:.2f}"),
                    fmt(f.get("postgres_cores"), "{:.2f}"),
                    fmt(f.get("storage_lookups_per_s")),
                    _ratio(f.get("handshakes_per_s"), f.get("storage_lookups_per_s")),
                    TARGETS.get(r.scenario, "-"),
                ]
            )
        out += [""] if out else []
        out += _rows(
            "| scenario | sockets | offered/s | handshakes/s | welcome p50 ms | p95 ms | p99 ms | "
            "max ms | refused/failed | server cores | postgres cores | "
            "storage session+user lookups/s | handshakes ÷ storage | target |",
            rows,
        )
    storm = [r for r in results if r.kind == "storm"]
    if storm:
        rows = []
        for r in storm:
            f = r.figures
            rows.append(
                [
                    r.scenario,
                    f"{r.clients:,}",
                    str(f.get("rooms", "-")),
                    f"{f.get('closed', '-')}/{f.get('restarted_clients', '-')}",
                    fmt(f.get("restart_healthy_s"), "{:.1f}"),
                    fmt(f.get("back_s"), "{:.1f}"),
                    fmt(f.get("resubscribed_s"), "{:.1f}"),
                    fmt(f.get("recovered_s"), "{:.1f}"),
                    r.error or f"{f.get('not_recovered', '-')}",
                    f"{f.get('published', '-')}",
                    f"{f.get('lost_events', '-')} ({f.get('lost_deliveries', '-')})",
                    str(f.get("duplicates", "-")),
                    str(f.get("gaps", "-")),
                    f"{f.get('attempts', '-')} ({f.get('failed_attempts', '-')} failed)",
                    fmt(f.get("storage_lookups_per_s")),
                    fmt(f.get("storage_replays_per_s")),
                    TARGETS.get(r.scenario, "-"),
                ]
            )
        out += [""] if out else []
        out += _rows(
            "| scenario | sockets | rooms | closed/on restarted proc | restarted healthy s | "
            "all back s | all resubscribed s | all recovered s | not recovered | "
            "published (acked) | lost events (deliveries) | dup | gaps | reconnect attempts | "
            "storage session+user lookups/s | storage replay queries/s | target |",
            rows,
        )
    return out


def summary(result) -> str:
    f = result.figures
    if result.kind == "publish":
        return (
            f"    acked/s {base.fmt(f.get('acked_per_s'))} (offered "
            f"{base.fmt(f.get('offered_per_s')) if f.get('offered_per_s') else 'window'})  "
            f"ack p99 {_ms(f, 'ack_p99_ms')} ms  errors {_codes(f.get('errors', {}))}  "
            f"lost {f.get('lost_events')} gaps {f.get('gaps')}  "
            f"storage {base.fmt(f.get('storage_tx_per_s'))} tx/s, "
            f"{base.fmt(f.get('storage_rows_per_s_50'))} rows/s in tx of 50"
        )
    if result.kind == "handshake":
        return (
            f"    {base.fmt(f.get('handshakes_per_s'))} handshakes/s  p50 "
            f"{_ms(f, 'welcome_p50_ms')} p99 {_ms(f, 'welcome_p99_ms')} ms  "
            f"failed {_codes(f.get('failures', {}))}  "
            f"storage {base.fmt(f.get('storage_lookups_per_s'))} lookups/s"
        )
    return (
        f"    back {base.fmt(f.get('back_s'), '{:.1f}')} s  resubscribed "
        f"{base.fmt(f.get('resubscribed_s'), '{:.1f}')} s  recovered "
        f"{base.fmt(f.get('recovered_s'), '{:.1f}')} s  lost {f.get('lost_events')}  "
        f"dup {f.get('duplicates')}  attempts {f.get('attempts')}"
    )


# Dispatch (bench/run.py) ---------------------------------------------------------------

KINDS = ("publish", "handshake", "storm")


def server_env(scenario) -> dict:
    """Settings over the bench's own: the issue's scenarios run within the server's
    per-connection rate limit (None: its default), except the publish ceilings."""
    if scenario.kind in ("fanout", "idle") or (scenario.kind == "publish" and not scenario.rate):
        return {}
    return {"REALTIME_RATE_BURST": None, "REALTIME_RATE_PER_SECOND": None}


async def run_scenario(scenario, servers, workers, fixtures, args, meter, database, first_room):
    if scenario.kind == "publish":
        return await run_publish(
            scenario, servers, workers, fixtures, args, meter, database, first_room
        )
    if scenario.kind == "handshake":
        return await run_handshake(scenario, servers, workers, fixtures, args, meter, database)
    return await run_storm(scenario, servers, workers, fixtures, args, meter, database, first_room)
