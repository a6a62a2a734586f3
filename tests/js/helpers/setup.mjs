// Per-test setup: a protocol server and clients that are cleaned up after the test.
import { RealtimeClient } from "../../../realtime/static/realtime/realtime.js";
import { ProtocolServer, WebSocket } from "./server.mjs";

export { RealtimeClient };

/** A started ProtocolServer (on `port`, or an ephemeral one), stopped after the test. */
export async function startServer(t, options = {}, port = 0) {
  const server = await new ProtocolServer(options).start(port);
  t.after(() => server.stop());
  return server;
}

/**
 * A RealtimeClient using the `ws` package's WebSocket (Node 20 has none),
 * with fast test timings unless overridden; closed after the test.
 */
export function makeClient(t, url, options = {}) {
  const client = new RealtimeClient(url, { WebSocket, baseDelay: 10, maxDelay: 40, restartJitterMs: 20, ...options });
  t.after(() => client.close());
  return client;
}

/** Every statechange detail the client fires from now on. */
export function recordStates(client) {
  const states = [];
  client.addEventListener("statechange", (event) => states.push(event.detail));
  return states;
}
