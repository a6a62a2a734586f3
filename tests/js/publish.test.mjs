import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, waitFor } from "./helpers/server.mjs";
import { makeClient, startServer } from "./helpers/setup.mjs";

test("publish resolves with the topic and offset of the ack", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  assert.deepEqual(await client.publish("room:a", { text: "one" }), { topic: "room:a", offset: 1 });
  assert.deepEqual(await client.publish("room:a", { text: "two" }), { topic: "room:a", offset: 2 });
  assert.deepEqual(server.topic("room:a").events.map((e) => e.data.text), ["one", "two"]);
});

test("every publish carries a ref and a random client id of at most 64 characters", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  await Promise.all([client.publish("room:a", { text: "one" }), client.publish("room:a", { text: "two" })]);
  const frames = server.framesOf("publish");
  assert.equal(frames.length, 2);
  for (const frame of frames) {
    assert.equal(typeof frame.id, "string");
    assert.ok(frame.id.length > 0 && frame.id.length <= 64);
    assert.equal(typeof frame.ref, "string");
    assert.ok(frame.ref.length <= 64);
  }
  assert.notEqual(frames[0].id, frames[1].id);
  assert.notEqual(frames[0].ref, frames[1].ref);
});

test("publish rejects with the code and message of the error frame", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  await assert.rejects(client.publish("room:a", { text: "  " }), (err) => {
    assert.ok(err instanceof Error);
    assert.equal(err.code, "invalid");
    assert.equal(err.message, "Text is required.");
    assert.equal(err.topic, "room:a");
    return true;
  });
  assert.deepEqual(await client.publish("room:a", { text: "fine" }), { topic: "room:a", offset: 1 });
});

test("a publish dropped as rate limited is sent again after retry_after_ms with the same id", async (t) => {
  const server = await startServer(t);
  let refusals = 2;
  server.intercept = (conn, frame) => {
    if (frame.type !== "publish" || refusals === 0) return false;
    refusals -= 1;
    server.send(conn, { type: "error", code: "rate_limited", message: "Slow down.", ref: frame.ref, retry_after_ms: 20 });
    return true;
  };
  const client = makeClient(t, server.url);
  assert.deepEqual(await client.publish("room:a", { text: "x" }), { topic: "room:a", offset: 1 });
  const frames = server.framesOf("publish");
  assert.equal(frames.length, 3);
  assert.equal(new Set(frames.map((f) => f.id)).size, 1);
  assert.equal(server.topic("room:a").events.length, 1);
});

test("a publish still rate limited after five resends rejects with rate_limited and retryAfterMs", async (t) => {
  const server = await startServer(t);
  server.intercept = (conn, frame) => {
    if (frame.type !== "publish") return false;
    server.send(conn, { type: "error", code: "rate_limited", message: "Slow down.", ref: frame.ref, retry_after_ms: 5 });
    return true;
  };
  const client = makeClient(t, server.url);
  await assert.rejects(client.publish("room:a", { text: "x" }), { code: "rate_limited", retryAfterMs: 5 });
  assert.equal(server.framesOf("publish").length, 6);
});

test("an offline queue longer than the server's burst gets through after a reconnect", async (t) => {
  const port = await freePort();
  // A burst larger than this server allows: the last ones are refused, then sent again.
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`, { maxDelay: 20, publishBurst: 35, publishRate: 50 });
  const queued = Array.from({ length: 40 }, (_, n) => client.publish("room:a", { text: `m${n}` }));
  const server = await startServer(t, {}, port);
  // The server's limit: bursts of 30, then 100 a second.
  let tokens = 30;
  let at = Date.now();
  server.intercept = (conn, frame) => {
    tokens = Math.min(30, tokens + ((Date.now() - at) * 100) / 1000);
    at = Date.now();
    if (tokens >= 1) {
      tokens -= 1;
      return false;
    }
    server.send(conn, { type: "error", code: "rate_limited", message: "Slow down.", ref: frame.ref, retry_after_ms: 10 });
    return true;
  };
  const acks = await Promise.all(queued);
  // Each stored once (a refused one may land after later ones that got through).
  assert.deepEqual(acks.map((ack) => ack.offset).sort((a, b) => a - b), Array.from({ length: 40 }, (_, n) => n + 1));
  const texts = server.topic("room:a").events.map((e) => e.data.text);
  assert.deepEqual([...texts].sort(), Array.from({ length: 40 }, (_, n) => `m${n}`).sort());
  assert.ok(server.framesOf("publish").length > 40, "some were refused and sent again");
});

test("publishes past publishBurst are paced at publishRate, in order", async (t) => {
  const server = await startServer(t);
  const arrivals = [];
  server.intercept = (conn, frame) => {
    if (frame.type === "publish") arrivals.push([Date.now(), frame.data.text]);
    return false;
  };
  const client = makeClient(t, server.url, { publishBurst: 2, publishRate: 40 });
  await waitFor(() => client.state === "open");
  const acks = await Promise.all(["1", "2", "3", "4", "5"].map((text) => client.publish("room:a", { text })));
  assert.deepEqual(acks.map((ack) => ack.offset), [1, 2, 3, 4, 5]);
  assert.deepEqual(arrivals.map(([, text]) => text), ["1", "2", "3", "4", "5"]);
  const spread = arrivals[4][0] - arrivals[0][0];
  assert.ok(spread >= 60, `three paced publishes at 40/s took ${spread} ms`);
});

test("the default pace sends a burst of 20 at once", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  const pending = Array.from({ length: 21 }, (_, n) => client.publish("room:a", { text: `m${n}` }));
  await waitFor(() => server.framesOf("publish").length === 20);
  await sleep(30);
  assert.equal(server.framesOf("publish").length, 20, "the 21st waits its turn (0.1 s)");
  await Promise.all(pending);
});

test("a publish without an answer rejects with timeout after publishTimeout", async (t) => {
  const server = await startServer(t);
  server.intercept = (conn, frame) => frame.type === "publish"; // swallowed
  const client = makeClient(t, server.url, { publishTimeout: 60 });
  await waitFor(() => client.state === "open");
  const started = Date.now();
  await assert.rejects(client.publish("room:a", { text: "lost" }), { code: "timeout" });
  const waited = Date.now() - started;
  assert.ok(waited >= 55 && waited < 1000, `waited ${waited} ms`);
});

test("publishes made while offline are queued and sent after the resubscriptions, in order", async (t) => {
  const server = await startServer(t);
  const port = server.port;
  const client = makeClient(t, server.url, { maxDelay: 20 });
  const sub = client.subscribe("room:a", () => {});
  await sub.ready;
  await server.stop();
  await waitFor(() => client.state !== "open");
  const first = client.publish("room:a", { text: "first" });
  const second = client.publish("room:b", { text: "second" });
  await sleep(50);
  await server.start(port);
  assert.deepEqual(await first, { topic: "room:a", offset: 1 });
  assert.deepEqual(await second, { topic: "room:b", offset: 1 });
  const conn = server.last;
  assert.deepEqual(
    conn.frames.map((f) => `${f.type} ${f.topic}`),
    ["subscribe room:a", "publish room:a", "publish room:b"],
  );
});

test("a queued publish does not time out while it waits for the connection", async (t) => {
  const port = await freePort();
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`, { publishTimeout: 150, maxDelay: 20 });
  const pending = client.publish("room:a", { text: "patient" });
  await sleep(400); // more than two publishTimeouts while offline
  await startServer(t, {}, port);
  assert.deepEqual(await pending, { topic: "room:a", offset: 1 });
});

test("the offline queue is bounded: the publish past maxQueue rejects with queue_full", async (t) => {
  const port = await freePort();
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`, { maxQueue: 3, maxDelay: 20 });
  const queued = [1, 2, 3].map((n) => client.publish("room:a", { text: `m${n}` }));
  assert.equal(client.pendingPublishes, 3);
  await assert.rejects(client.publish("room:a", { text: "m4" }), (err) => {
    assert.equal(err.code, "queue_full");
    assert.match(err.message, /3/);
    return true;
  });
  const server = await startServer(t, {}, port);
  assert.deepEqual(
    (await Promise.all(queued)).map((ack) => ack.offset),
    [1, 2, 3],
  );
  assert.deepEqual(server.topic("room:a").events.map((e) => e.data.text), ["m1", "m2", "m3"]);
  assert.equal(client.pendingPublishes, 0);
});

test("a publish whose ack was lost is resent with the same id and stored once", async (t) => {
  const server = await startServer(t);
  let dropped = false;
  server.intercept = (conn, frame) => {
    if (frame.type !== "publish" || dropped) return false;
    dropped = true;
    server.publish(frame.topic, frame.data, frame.id); // stored and broadcast...
    conn.ws.close(1011); // ...but the ack is lost with the connection
    return true;
  };
  const client = makeClient(t, server.url);
  const ack = await client.publish("room:a", { text: "exactly once" });
  assert.deepEqual(ack, { topic: "room:a", offset: 1 });
  const frames = server.framesOf("publish");
  assert.equal(frames.length, 2);
  assert.equal(frames[0].id, frames[1].id, "the resend keeps its id");
  assert.notEqual(frames[0].ref, frames[1].ref);
  assert.equal(server.topic("room:a").events.length, 1);
  assert.equal(server.connections.length, 2);
});

test("a publish whose frame would pass 64 KiB is refused with too_large and not sent", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  await assert.rejects(client.publish("room:a", { text: "é".repeat(33_000) }), { code: "too_large" });
  assert.equal(server.framesOf("publish").length, 0);
  assert.equal(client.state, "open");
});

test("a publish sent while open keeps waiting across a reconnect without timing out while offline", async (t) => {
  const server = await startServer(t);
  const port = server.port;
  let swallow = true;
  server.intercept = (conn, frame) => frame.type === "publish" && swallow;
  const client = makeClient(t, server.url, { publishTimeout: 200, maxDelay: 20 });
  await waitFor(() => client.state === "open");
  const pending = client.publish("room:a", { text: "in flight" });
  await waitFor(() => server.framesOf("publish").length === 1);
  await server.stop(); // dropped before the ack
  await sleep(350); // longer than publishTimeout, but offline
  swallow = false;
  await server.start(port);
  assert.deepEqual(await pending, { topic: "room:a", offset: 1 });
});

test("a publish refused as unavailable is sent again with the same id until the server stores it", async (t) => {
  const server = await startServer(t);
  let refusals = 3;
  server.intercept = (conn, frame) => {
    if (frame.type !== "publish" || refusals === 0) return false;
    refusals -= 1;
    server.send(conn, { type: "error", code: "unavailable", message: "Database down.", ref: frame.ref, retry_after_ms: 20 });
    return true;
  };
  const client = makeClient(t, server.url);
  assert.deepEqual(await client.publish("room:a", { text: "x" }), { topic: "room:a", offset: 1 });
  const frames = server.framesOf("publish");
  assert.equal(frames.length, 4);
  assert.equal(new Set(frames.map((f) => f.id)).size, 1);
  assert.equal(server.topic("room:a").events.length, 1);
});
