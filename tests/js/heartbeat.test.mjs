import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "./helpers/server.mjs";
import { makeClient, recordStates, startServer } from "./helpers/setup.mjs";

test("pings go out every welcome.heartbeat seconds, each with a ref", async (t) => {
  const server = await startServer(t, { heartbeat: 0.03 });
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  await sleep(200);
  const pings = server.framesOf("ping");
  assert.ok(pings.length >= 3 && pings.length <= 8, `${pings.length} pings in 200 ms at 30 ms`);
  assert.equal(new Set(pings.map((p) => p.ref)).size, pings.length);
});

test("the heartbeatMs option overrides welcome.heartbeat", async (t) => {
  const server = await startServer(t, { heartbeat: 25 });
  const client = makeClient(t, server.url, { heartbeatMs: 20 });
  await waitFor(() => server.framesOf("ping").length >= 3, { timeout: 1000 });
  assert.equal(client.state, "open");
});

test("a server that answers pings keeps the connection open", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url, { heartbeatMs: 15 });
  await waitFor(() => client.state === "open");
  await sleep(200);
  assert.ok(server.framesOf("ping").length >= 5);
  assert.equal(client.state, "open");
  assert.equal(server.connections.length, 1);
});

test("two intervals without pong close the socket and reconnect", async (t) => {
  const server = await startServer(t, { answerPings: false });
  const client = makeClient(t, server.url, { heartbeatMs: 25 });
  const states = recordStates(client);
  const closes = [];
  client.addEventListener("close", (event) => closes.push(event));
  await waitFor(() => client.state === "open");
  const opened = Date.now();
  let dead = 0;
  client.addEventListener("statechange", (e) => e.detail.state === "reconnecting" && !dead && (dead = Date.now()));
  await waitFor(() => dead, { timeout: 1000, message: "the heartbeat timeout" });
  const elapsed = dead - opened;
  assert.ok(elapsed < 1500, `declared dead after ${elapsed} ms (three ticks of 25 ms)`);
  await waitFor(() => server.connections[0].closed, { message: "the dead socket closed" });
  assert.equal(server.framesOf("ping", 1).length, 2, "two pings went unanswered");
  assert.equal(states.find((s) => s.state === "reconnecting").reason, "heartbeat_timeout");
  assert.equal(closes[0].code, 1006);
  assert.equal(closes[0].wasClean, false);
  // It reconnects (and, as this server never answers, gives up on that one too).
  await waitFor(() => server.connections.length >= 2, { message: "a new connection" });
});

test("a pong after a missed one keeps the connection", async (t) => {
  const server = await startServer(t);
  let n = 0;
  server.intercept = (conn, frame) => frame.type === "ping" && ++n % 2 === 1; // every other ping unanswered
  const client = makeClient(t, server.url, { heartbeatMs: 50 });
  await waitFor(() => client.state === "open");
  await sleep(350);
  assert.ok(server.framesOf("ping").length >= 4);
  assert.equal(client.state, "open");
  assert.equal(server.connections.length, 1);
});
