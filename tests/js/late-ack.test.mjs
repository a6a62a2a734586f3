// `publishacked`: every ack, and the late ack of a publish that already
// rejected with `timeout`, so a stored message never looks unsent.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { nextEvent, waitFor } from "./helpers/server.mjs";
import { makeClient, startServer } from "./helpers/setup.mjs";

/** Every publishacked detail the client fires from now on. */
function recordAcks(client) {
  const acks = [];
  client.addEventListener("publishacked", (event) => acks.push(event.detail));
  return acks;
}

/** A server hook that stores each publish but holds back its ack until `ackAll()`. */
function slowAcks(server) {
  const held = [];
  server.intercept = (conn, frame) => {
    if (frame.type !== "publish") return false;
    const event = server.store(frame.topic, frame.data, frame.id);
    held.push([conn, { type: "ack", ref: frame.ref, topic: frame.topic, offset: event.offset }]);
    return true;
  };
  return {
    held,
    ackAll() {
      for (const [conn, ack] of held.splice(0)) server.send(conn, ack);
    },
  };
}

test("every ack fires publishacked with topic, offset, id and late: false", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const acks = recordAcks(client);
  await client.publish("room:a", { text: "one" }, { id: "msg-1" });
  await client.publish("room:a", { text: "two" });
  const ids = server.framesOf("publish").map((f) => f.id);
  assert.deepEqual(acks, [
    { topic: "room:a", offset: 1, id: "msg-1", late: false },
    { topic: "room:a", offset: 2, id: ids[1], late: false },
  ]);
});

test("an ack after the publish timed out fires publishacked with late: true", async (t) => {
  const server = await startServer(t);
  const slow = slowAcks(server);
  const client = makeClient(t, server.url, { publishTimeout: 40 });
  const acks = recordAcks(client);
  await waitFor(() => client.state === "open");
  await assert.rejects(client.publish("room:a", { text: "slow" }, { id: "msg-1" }), { code: "timeout" });
  assert.deepEqual(acks, []);
  const reported = nextEvent(client, "publishacked");
  slow.ackAll();
  const event = await reported;
  assert.deepEqual(event.detail, { topic: "room:a", offset: 1, id: "msg-1", late: true });
  await sleep(20);
  assert.equal(acks.length, 1);
  assert.equal(client.pendingPublishes, 0);
});

test("a late ack of a publish with a client-made id reports that id", async (t) => {
  const server = await startServer(t);
  const slow = slowAcks(server);
  const client = makeClient(t, server.url, { publishTimeout: 40 });
  const acks = recordAcks(client);
  await waitFor(() => client.state === "open");
  await assert.rejects(client.publish("room:a", { text: "slow" }), { code: "timeout" });
  slow.ackAll();
  await waitFor(() => acks.length === 1);
  assert.equal(acks[0].id, server.framesOf("publish")[0].id);
  assert.equal(acks[0].late, true);
});

test("a late ack is not reported once a retry with the same id was acked", async (t) => {
  const server = await startServer(t);
  const slow = slowAcks(server);
  const client = makeClient(t, server.url, { publishTimeout: 40 });
  const acks = recordAcks(client);
  await waitFor(() => client.state === "open");
  await assert.rejects(client.publish("room:a", { text: "slow" }, { id: "msg-1" }), { code: "timeout" });
  server.intercept = null; // the retry is answered at once (with the first offset)
  assert.deepEqual(await client.publish("room:a", { text: "slow" }, { id: "msg-1" }), { topic: "room:a", offset: 1 });
  slow.ackAll();
  await sleep(40);
  assert.deepEqual(acks, [{ topic: "room:a", offset: 1, id: "msg-1", late: false }]);
});

test("a late error for a timed-out publish reports nothing", async (t) => {
  const server = await startServer(t);
  const held = [];
  server.intercept = (conn, frame) => frame.type === "publish" && held.push([conn, frame]) > 0;
  const client = makeClient(t, server.url, { publishTimeout: 40 });
  const acks = recordAcks(client);
  await waitFor(() => client.state === "open");
  await assert.rejects(client.publish("room:a", { text: "x" }, { id: "msg-1" }), { code: "timeout" });
  const [conn, frame] = held[0];
  server.send(conn, { type: "error", code: "invalid", message: "no", ref: frame.ref, topic: "room:a" });
  server.send(conn, { type: "ack", ref: frame.ref, topic: "room:a", offset: 7 }); // nonsense after the error
  await sleep(40);
  assert.deepEqual(acks, []);
});

test("the memory of timed-out publishes is bounded by lateAckMemory", async (t) => {
  const server = await startServer(t);
  const slow = slowAcks(server);
  const client = makeClient(t, server.url, { publishTimeout: 40, lateAckMemory: 2 });
  const acks = recordAcks(client);
  await waitFor(() => client.state === "open");
  const results = await Promise.allSettled(["a", "b", "c"].map((id) => client.publish("room:a", { text: id }, { id })));
  assert.deepEqual(results.map((r) => r.reason?.code), ["timeout", "timeout", "timeout"]);
  slow.ackAll();
  await waitFor(() => acks.length === 2);
  await sleep(30);
  assert.deepEqual(acks.map((a) => `${a.id}:${a.late}`), ["b:true", "c:true"], "the oldest was forgotten");
});
