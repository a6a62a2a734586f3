// A dead link is noticed within two heartbeat intervals of the ping that
// went unanswered (PROTOCOL.md: "a missing pong (two intervals)"), or at
// once when the browser reports offline (see network.test.mjs).
import assert from "node:assert/strict";
import { test } from "node:test";
import { waitFor } from "./helpers/server.mjs";
import { makeClient, recordStates, startServer } from "./helpers/setup.mjs";

test("a link that stops answering is declared dead two intervals after its first unanswered ping", async (t) => {
  const interval = 80;
  const server = await startServer(t);
  let answered = 0;
  let silentSince = 0;
  server.intercept = (conn, frame) => {
    if (frame.type !== "ping") return false;
    if (answered < 3) {
      answered += 1;
      return false; // answered as usual
    }
    if (!silentSince) silentSince = Date.now(); // from here on the link is dead
    return true;
  };
  const client = makeClient(t, server.url, { heartbeatMs: interval });
  const states = recordStates(client);
  let dead = 0;
  client.addEventListener("statechange", (e) => e.detail.state === "reconnecting" && !dead && (dead = Date.now()));
  await waitFor(() => dead, { timeout: 3000, message: "the link declared dead" });
  const elapsed = dead - silentSince;
  assert.ok(elapsed > interval, `one missed pong is tolerated (${elapsed} ms)`);
  assert.ok(elapsed <= 2 * interval + 60, `declared dead ${elapsed} ms after the first unanswered ping (interval ${interval} ms)`);
  const change = states.find((s) => s.state === "reconnecting");
  assert.equal(change.reason, "heartbeat_timeout");
  assert.equal(server.connections[0].frames.filter((f) => f.type === "ping").length, 5, "three answered, two not");
});
