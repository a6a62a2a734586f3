import assert from "node:assert/strict";
import { test } from "node:test";
import { freePort, silentServer, waitFor } from "./helpers/server.mjs";
import { RealtimeClient, makeClient, recordStates, startServer } from "./helpers/setup.mjs";

const reconnectDelays = (states) => states.filter((s) => s.state === "reconnecting").map((s) => s.delay);

test("every backoff delay lies within [0, min(30 s, 0.5 s * 2^k)]", () => {
  for (let k = 0; k <= 20; k++) {
    const ceiling = Math.min(30_000, 500 * 2 ** k);
    for (let i = 0; i < 200; i++) {
      const delay = RealtimeClient.backoffDelay(k);
      assert.ok(delay >= 0 && delay <= ceiling, `try ${k}: ${delay} not in [0, ${ceiling}]`);
    }
  }
});

test("the backoff doubles from 0.5 s and is capped at 30 s", () => {
  const top = (k) => RealtimeClient.backoffDelay(k, { random: () => 1 });
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 100, 5000].map(top), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  assert.equal(RealtimeClient.backoffDelay(3, { random: () => 0 }), 0);
});

test("the jitter is kept at the cap", () => {
  assert.equal(RealtimeClient.backoffDelay(60, { random: () => 0.5 }), 15_000);
  assert.equal(RealtimeClient.backoffDelay(60, { random: () => 0.1 }), 3_000);
});

test("base and cap can be set by options", () => {
  const top = (k) => RealtimeClient.backoffDelay(k, { baseDelay: 100, maxDelay: 1000, random: () => 1 });
  assert.deepEqual([0, 1, 2, 3, 4, 9].map(top), [100, 200, 400, 800, 1000, 1000]);
});

test("a client that cannot reach the server waits base * 2^k between tries, capped", async (t) => {
  const port = await freePort();
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`, { baseDelay: 10, maxDelay: 80, random: () => 1 });
  const states = recordStates(client);
  await waitFor(() => reconnectDelays(states).length >= 6, { message: "six retries" });
  assert.deepEqual(reconnectDelays(states).slice(0, 6), [10, 20, 40, 80, 80, 80]);
  for (const s of states.filter((s) => s.state === "reconnecting")) {
    assert.equal(s.reason, "connection_lost");
    assert.equal(s.code, 1006);
    assert.equal(typeof s.retryAt, "number");
  }
  assert.ok(states.some((s) => s.state === "connecting" && s.reason === "retry"));
});

test("the delays between tries are drawn with full jitter from the random option", async (t) => {
  const port = await freePort();
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`, { baseDelay: 10, maxDelay: 80, random: () => 0.25 });
  const states = recordStates(client);
  await waitFor(() => reconnectDelays(states).length >= 5);
  assert.deepEqual(reconnectDelays(states).slice(0, 5), [2, 5, 10, 20, 20]);
});

test("the first retry with default options waits up to 0.5 s, and retryAt says when", async (t) => {
  const port = await freePort();
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`, { baseDelay: undefined, maxDelay: undefined, random: () => 1 });
  const states = recordStates(client);
  await waitFor(() => client.state === "reconnecting");
  const [first] = states.filter((s) => s.state === "reconnecting");
  assert.equal(first.delay, 500);
  assert.ok(Math.abs(first.retryAt - (Date.now() + 500)) < 100, "retryAt is about now + 0.5 s");
  assert.equal(client.retryAt, first.retryAt);
  assert.equal(client.readyState, RealtimeClient.CONNECTING);
});

test("a connection that stays up for minUptime starts the backoff over", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url, { baseDelay: 10, maxDelay: 1000, minUptime: 400, random: () => 1 });
  const states = recordStates(client);
  // Three quick drops: the backoff grows.
  for (let n = 1; n <= 3; n++) {
    await waitFor(() => server.connections.length === n && client.state === "open");
    server.closeAll(1011);
  }
  await waitFor(() => reconnectDelays(states).length === 3);
  assert.deepEqual(reconnectDelays(states), [10, 20, 40]);
  // A connection that lasted longer than minUptime: back to the first delay.
  await waitFor(() => server.connections.length === 4 && client.state === "open");
  await new Promise((resolve) => setTimeout(resolve, 450));
  server.closeAll(1011);
  await waitFor(() => reconnectDelays(states).length === 4);
  assert.equal(reconnectDelays(states)[3], 10);
});

test("a connect attempt that does not open within connectTimeout counts as failed", async (t) => {
  const silent = await silentServer();
  t.after(() => silent.stop());
  const client = makeClient(t, silent.url, { connectTimeout: 50, baseDelay: 10, random: () => 1 });
  const states = recordStates(client);
  const closes = [];
  client.addEventListener("close", (event) => closes.push(event));
  await waitFor(() => reconnectDelays(states).length >= 2, { message: "two timed out attempts" });
  const retries = states.filter((s) => s.state === "reconnecting");
  assert.equal(retries[0].reason, "connect_timeout");
  assert.deepEqual(reconnectDelays(states).slice(0, 2), [10, 20], "each timeout is a failed try");
  assert.equal(closes[0].code, 1006);
  assert.equal(closes[0].wasClean, false);
  assert.ok(silent.accepted() >= 2, "the next try connected again");
});
