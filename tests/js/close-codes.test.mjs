import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { nextEvent, waitFor } from "./helpers/server.mjs";
import { RealtimeClient, makeClient, recordStates, startServer } from "./helpers/setup.mjs";

const STAY_CLOSED = [
  [1000, "normal_closure"],
  [4000, "disconnected_by_admin"],
  [4003, "binary_frame"],
  [4009, "frame_too_large"],
  [4401, "signed_out"],
  [4029, "too_many_connections"],
];

const RECONNECT = [
  [1011, "server_error"],
  [4008, "too_slow"],
  [4429, "rate_limited"],
  [4012, "server_restart"],
  [4999, "connection_closed"],
  [1001, "connection_closed"],
];

for (const [code, reason] of STAY_CLOSED) {
  test(`a close with ${code} leaves the client closed with reason ${reason}`, async (t) => {
    const server = await startServer(t);
    const client = makeClient(t, server.url);
    const states = recordStates(client);
    await waitFor(() => client.state === "open");
    const closed = nextEvent(client, "close");
    server.closeAll(code, "bye");
    const event = await closed;
    assert.equal(event.code, code);
    assert.equal(event.reason, "bye");
    assert.equal(event.wasClean, true);
    await waitFor(() => client.state === "closed");
    const last = states.at(-1);
    assert.deepEqual(
      { state: last.state, previous: last.previous, reason: last.reason, code: last.code, retryAt: last.retryAt },
      { state: "closed", previous: "open", reason, code, retryAt: null },
    );
    assert.equal(client.readyState, RealtimeClient.CLOSED);
    await sleep(80); // longer than any retry of these options
    assert.equal(server.connections.length, 1, "no reconnection");
    await assert.rejects(client.publish("room:a", { text: "late" }), { code: "closed", reason });
  });
}

test("a close with 4003 or 4009 is also reported as an error", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  const error = nextEvent(client, "error");
  server.closeAll(4009);
  const event = await error;
  assert.deepEqual(event.detail, { code: 4009, reason: "frame_too_large" });
});

for (const [code, reason] of RECONNECT) {
  test(`a close with ${code} reconnects (${reason})`, async (t) => {
    const server = await startServer(t);
    const client = makeClient(t, server.url);
    const states = recordStates(client);
    await waitFor(() => client.state === "open");
    server.closeAll(code);
    await waitFor(() => server.connections.length === 2 && client.state === "open", { message: "reconnection" });
    const retry = states.find((s) => s.state === "reconnecting");
    assert.equal(retry.reason, reason);
    assert.equal(retry.code, code);
    assert.deepEqual(
      states.map((s) => s.state),
      ["open", "reconnecting", "connecting", "open"],
    );
  });
}

test("a dropped connection (1006) reconnects", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const states = recordStates(client);
  await waitFor(() => client.state === "open");
  const closed = nextEvent(client, "close");
  server.terminateAll();
  const event = await closed;
  assert.equal(event.code, 1006);
  assert.equal(event.wasClean, false);
  await waitFor(() => server.connections.length === 2 && client.state === "open");
  assert.equal(states.find((s) => s.state === "reconnecting").reason, "connection_lost");
});

test("after 4012 the first try waits a random time up to restartJitterMs", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url, { baseDelay: 10, restartJitterMs: 400, random: () => 1 });
  const states = recordStates(client);
  await waitFor(() => client.state === "open");
  server.closeAll(4012);
  await waitFor(() => client.state === "reconnecting");
  assert.equal(states.at(-1).delay, 400);
  assert.equal(states.at(-1).reason, "server_restart");
  const half = makeClient(t, server.url, { baseDelay: 10, restartJitterMs: 2000, random: () => 0.5 });
  const halfStates = recordStates(half);
  await waitFor(() => half.state === "open");
  server.closeAll(4012);
  await waitFor(() => half.state === "reconnecting");
  assert.equal(halfStates.at(-1).delay, 1000);
});

test("after 4012 with default options the first try waits up to 5 s", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url, { baseDelay: undefined, maxDelay: undefined, restartJitterMs: undefined, random: () => 1 });
  const states = recordStates(client);
  await waitFor(() => client.state === "open");
  server.closeAll(4012);
  await waitFor(() => client.state === "reconnecting");
  assert.equal(states.at(-1).delay, 5000);
});

test("close() closes the socket with its code and stops reconnecting", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const states = recordStates(client);
  await waitFor(() => client.state === "open");
  const closed = nextEvent(client, "close");
  client.close(1000, "leaving");
  assert.equal(client.state, "closed");
  assert.equal(client.readyState, RealtimeClient.CLOSING);
  const event = await closed;
  assert.equal(event.code, 1000);
  assert.equal(client.readyState, RealtimeClient.CLOSED);
  await waitFor(() => server.last.closed);
  assert.deepEqual(server.last.closed, { code: 1000, reason: "leaving" });
  assert.equal(states.at(-1).reason, "client_closed");
  await sleep(60);
  assert.equal(server.connections.length, 1);
});

test("close() while waiting to reconnect cancels the next try and rejects queued publishes", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url, { baseDelay: 60_000, maxDelay: 60_000, random: () => 1 });
  await waitFor(() => client.state === "open");
  server.closeAll(1011);
  await waitFor(() => client.state === "reconnecting");
  const queued = client.publish("room:a", { text: "never sent" });
  client.close();
  await assert.rejects(queued, { code: "closed", reason: "client_closed" });
  assert.equal(client.state, "closed");
  assert.equal(client.readyState, RealtimeClient.CLOSED);
});

test("the online event tries at once while reconnecting", async (t) => {
  const server = await startServer(t);
  globalThis.window = new EventTarget();
  t.after(() => delete globalThis.window);
  const client = makeClient(t, server.url, { baseDelay: 60_000, maxDelay: 60_000, random: () => 1 });
  const states = recordStates(client);
  await waitFor(() => client.state === "open");
  server.closeAll(1011);
  await waitFor(() => client.state === "reconnecting");
  globalThis.window.dispatchEvent(new Event("online"));
  await waitFor(() => client.state === "open" && server.connections.length === 2);
  assert.ok(states.some((s) => s.state === "connecting" && s.reason === "online"));
});

test("a page becoming visible tries at once while reconnecting", async (t) => {
  const server = await startServer(t);
  const doc = Object.assign(new EventTarget(), { visibilityState: "hidden" });
  globalThis.document = doc;
  t.after(() => delete globalThis.document);
  const client = makeClient(t, server.url, { baseDelay: 60_000, maxDelay: 60_000, random: () => 1 });
  const states = recordStates(client);
  await waitFor(() => client.state === "open");
  server.closeAll(1011);
  await waitFor(() => client.state === "reconnecting");
  doc.dispatchEvent(new Event("visibilitychange")); // still hidden: nothing happens
  await sleep(30);
  assert.equal(client.state, "reconnecting");
  doc.visibilityState = "visible";
  doc.dispatchEvent(new Event("visibilitychange"));
  await waitFor(() => client.state === "open" && server.connections.length === 2);
  assert.ok(states.some((s) => s.state === "connecting" && s.reason === "visible"));
});

test("the on-properties receive the same events as the listeners", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const seen = [];
  client.onopen = (event) => seen.push(event.type);
  client.onmessage = (event) => seen.push(`${event.type}:${event.detail.type}`);
  client.onclose = (event) => seen.push(`${event.type}:${event.code}`);
  await waitFor(() => seen.includes("message:welcome"));
  client.close();
  await waitFor(() => seen.includes("close:1000"));
  assert.deepEqual(seen, ["open", "message:welcome", "close:1000"]);
});
