// statechange.detail.cause: `offline` (see network.test.mjs), `unreachable`,
// `closed` (with `code`) or `client`; `reason` stays as it was.
import assert from "node:assert/strict";
import { test } from "node:test";
import { freePort, silentServer, waitFor } from "./helpers/server.mjs";
import { makeClient, recordStates, startServer } from "./helpers/setup.mjs";

const pick = (s) => ({ state: s.state, reason: s.reason, cause: s.cause, code: s.code });
/** The first recorded change to `state` (the client may already have moved on: retries are fast here). */
const first = (states, state) => waitFor(() => states.find((s) => s.state === state), { message: state });

test("a server that cannot be reached: cause unreachable", async (t) => {
  const port = await freePort();
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`);
  const states = recordStates(client);
  await waitFor(() => states.filter((s) => s.state === "reconnecting").length >= 2);
  for (const s of states.filter((s) => s.state === "reconnecting")) {
    assert.deepEqual(pick(s), { state: "reconnecting", reason: "connection_lost", cause: "unreachable", code: 1006 });
  }
});

test("a link that died (1006): cause unreachable", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  const states = recordStates(client);
  server.terminateAll();
  assert.deepEqual(pick(await first(states, "reconnecting")), { state: "reconnecting", reason: "connection_lost", cause: "unreachable", code: 1006 });
});

test("a heartbeat timeout: cause unreachable", async (t) => {
  const server = await startServer(t, { answerPings: false });
  const client = makeClient(t, server.url, { heartbeatMs: 20 });
  await waitFor(() => client.state === "open");
  const states = recordStates(client);
  assert.deepEqual(pick(await first(states, "reconnecting")), { state: "reconnecting", reason: "heartbeat_timeout", cause: "unreachable", code: 1006 });
});

test("a connect timeout: cause unreachable", async (t) => {
  const silent = await silentServer();
  t.after(() => silent.stop());
  const client = makeClient(t, silent.url, { connectTimeout: 30 });
  const states = recordStates(client);
  assert.deepEqual(pick(await first(states, "reconnecting")), { state: "reconnecting", reason: "connect_timeout", cause: "unreachable", code: 1006 });
});

for (const [code, reason] of [
  [1011, "server_error"],
  [4012, "server_restart"],
  [4008, "too_slow"],
  [4429, "rate_limited"],
  [4999, "connection_closed"],
]) {
  test(`a server close with ${code} that reconnects: cause closed, code ${code}`, async (t) => {
    const server = await startServer(t);
    const client = makeClient(t, server.url);
    await waitFor(() => client.state === "open");
    const states = recordStates(client);
    server.closeAll(code);
    assert.deepEqual(pick(await first(states, "reconnecting")), { state: "reconnecting", reason, cause: "closed", code });
  });
}

for (const [code, reason] of [
  [1000, "normal_closure"],
  [4000, "disconnected_by_admin"],
  [4401, "signed_out"],
  [4029, "too_many_connections"],
  [4009, "frame_too_large"],
]) {
  test(`a server close with ${code} that stays closed: cause closed, code ${code}`, async (t) => {
    const server = await startServer(t);
    const client = makeClient(t, server.url);
    await waitFor(() => client.state === "open");
    const states = recordStates(client);
    server.closeAll(code);
    await waitFor(() => client.state === "closed");
    assert.deepEqual(pick(states.at(-1)), { state: "closed", reason, cause: "closed", code });
  });
}

test("close() by the page: cause client", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  const states = recordStates(client);
  client.close();
  assert.deepEqual(pick(states.at(-1)), { state: "closed", reason: "client_closed", cause: "client", code: null });
});

test("connecting and open carry cause null", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  const states = recordStates(client);
  server.closeAll(1011);
  await waitFor(() => states.length === 3 && client.state === "open");
  assert.deepEqual(states.map((s) => `${s.state}:${s.cause}`), ["reconnecting:closed", "connecting:null", "open:null"]);
});
