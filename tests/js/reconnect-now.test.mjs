// reconnectNow(): while reconnecting, try at once; a no-op otherwise.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fakeEnvironment } from "./helpers/environment.mjs";
import { freePort, silentServer, waitFor } from "./helpers/server.mjs";
import { makeClient, recordStates, startServer } from "./helpers/setup.mjs";

const SLOW = { baseDelay: 60_000, maxDelay: 60_000, random: () => 1 }; // no retry by itself during a test

test("reconnectNow() while reconnecting tries at once", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url, SLOW);
  await waitFor(() => client.state === "open");
  const states = recordStates(client);
  server.closeAll(1011);
  await waitFor(() => client.state === "reconnecting");
  client.reconnectNow();
  assert.equal(client.state, "connecting");
  assert.equal(client.retryAt, null, "the scheduled try is cancelled");
  await waitFor(() => client.state === "open" && server.connections.length === 2);
  assert.deepEqual(states.map((s) => `${s.state}:${s.reason}`), ["reconnecting:server_error", "connecting:reconnect_now", "open:connected"]);
});

test("a reconnectNow() that fails goes on with the backoff", async (t) => {
  const port = await freePort();
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`, { baseDelay: 1000, maxDelay: 60_000, random: () => 1 });
  const states = recordStates(client);
  await waitFor(() => client.state === "reconnecting");
  assert.equal(states.at(-1).delay, 1000);
  client.reconnectNow();
  await waitFor(() => states.filter((s) => s.state === "reconnecting").length === 2);
  assert.equal(states.at(-1).delay, 2000, "the next delay of the backoff");
  assert.equal(states.at(-1).cause, "unreachable");
});

test("reconnectNow() does nothing while open, connecting or closed", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  client.reconnectNow();
  await sleep(30);
  assert.equal(client.state, "open");
  assert.equal(server.connections.length, 1);
  client.close();
  client.reconnectNow();
  await sleep(30);
  assert.equal(client.state, "closed");
  assert.equal(server.connections.length, 1);

  const silent = await silentServer();
  t.after(() => silent.stop());
  const connecting = makeClient(t, silent.url, { connectTimeout: 60_000 });
  await waitFor(() => silent.accepted() === 1);
  connecting.reconnectNow();
  await sleep(30);
  assert.equal(connecting.state, "connecting");
  assert.equal(silent.accepted(), 1);
});

test("reconnectNow() while the browser reports offline makes one attempt, then waits for the network", async (t) => {
  const server = await startServer(t);
  const env = fakeEnvironment({ onLine: false });
  const client = makeClient(t, server.url, { environment: env });
  assert.equal(client.state, "reconnecting");
  client.reconnectNow(); // the person asked: navigator.onLine may be wrong (a local server)
  await waitFor(() => client.state === "open");
  assert.equal(server.connections.length, 1);
  const states = recordStates(client);
  server.closeAll(1011);
  await waitFor(() => client.state === "reconnecting");
  assert.equal(states.at(-1).cause, "offline", "no automatic attempts while offline");
  await sleep(100);
  assert.equal(server.connections.length, 1);
});
