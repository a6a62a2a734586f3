// publish(topic, data, {id}): the client message id a page chooses (its
// "Retry" reuses it), joining a pending publish with the same id, and the id
// kept on every resend (reconnects, rate limits, unavailable).
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, waitFor } from "./helpers/server.mjs";
import { makeClient, startServer } from "./helpers/setup.mjs";

/** A server hook that holds back the publish frames (no answer) until `release()`. */
function holdPublishes(server) {
  const held = [];
  server.intercept = (conn, frame) => {
    if (frame.type !== "publish") return false;
    held.push([conn, frame]);
    return true;
  };
  return {
    held,
    /** Answer every held publish as the server would. */
    release() {
      server.intercept = null;
      for (const [conn, frame] of held.splice(0)) server.acceptPublish(conn, frame);
    },
  };
}

test("publish(topic, data, {id}) sends the page's id", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  assert.deepEqual(await client.publish("room:a", { text: "one" }, { id: "msg-1" }), { topic: "room:a", offset: 1 });
  const [frame] = server.framesOf("publish");
  assert.equal(frame.id, "msg-1");
});

test("a publish with the id of a pending one joins it: no second frame, the same outcome", async (t) => {
  const server = await startServer(t);
  const hold = holdPublishes(server);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  const first = client.publish("room:a", { text: "hello" }, { id: "msg-1" });
  await waitFor(() => hold.held.length === 1);
  const again = client.publish("room:a", { text: "hello" }, { id: "msg-1" }); // the page's "Retry"
  assert.equal(client.pendingPublishes, 1, "joined, not queued twice");
  await sleep(30);
  assert.equal(server.framesOf("publish").length, 1, "no second frame");
  hold.release();
  assert.deepEqual(await first, { topic: "room:a", offset: 1 });
  assert.deepEqual(await again, { topic: "room:a", offset: 1 });
  assert.equal(server.topic("room:a").events.length, 1);
});

test("a publish joined to a pending one rejects with the same error", async (t) => {
  const server = await startServer(t);
  const hold = holdPublishes(server);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  const first = client.publish("room:a", { text: " " }, { id: "msg-1" });
  await waitFor(() => hold.held.length === 1);
  const again = client.publish("room:a", { text: " " }, { id: "msg-1" });
  hold.release();
  const errors = await Promise.all([first, again].map((p) => p.then(() => null, (err) => err)));
  assert.equal(errors[0].code, "invalid");
  assert.equal(errors[1], errors[0], "the same rejection");
  assert.equal(server.framesOf("publish").length, 1);
});

test("a publish queued while disconnected is joined too, and sent once after the reconnect", async (t) => {
  const port = await freePort();
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`, { maxDelay: 20 });
  const first = client.publish("room:a", { text: "queued" }, { id: "msg-q" });
  const again = client.publish("room:a", { text: "queued" }, { id: "msg-q" });
  assert.equal(client.pendingPublishes, 1);
  const server = await startServer(t, {}, port);
  assert.deepEqual(await first, { topic: "room:a", offset: 1 });
  assert.deepEqual(await again, { topic: "room:a", offset: 1 });
  const frames = server.framesOf("publish");
  assert.equal(frames.length, 1);
  assert.equal(frames[0].id, "msg-q", "the queued publish keeps the page's id");
});

test("a publish with the id of a settled one is sent again with that id and gets the first offset", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  assert.deepEqual(await client.publish("room:a", { text: "once" }, { id: "msg-1" }), { topic: "room:a", offset: 1 });
  assert.deepEqual(await client.publish("room:a", { text: "once" }, { id: "msg-1" }), { topic: "room:a", offset: 1 });
  const frames = server.framesOf("publish");
  assert.equal(frames.length, 2, "sent again: the server decides");
  assert.deepEqual(frames.map((f) => f.id), ["msg-1", "msg-1"]);
  assert.notEqual(frames[0].ref, frames[1].ref);
  assert.equal(server.topic("room:a").events.length, 1, "never a second stored copy");
});

test("the page's Retry after a timeout reuses the id: the message is stored once", async (t) => {
  const server = await startServer(t);
  let first = true;
  server.intercept = (conn, frame) => {
    if (frame.type !== "publish" || !first) return false;
    first = false;
    server.store(frame.topic, frame.data, frame.id); // stored, but the ack is slow
    return true;
  };
  const client = makeClient(t, server.url, { publishTimeout: 50 });
  await waitFor(() => client.state === "open");
  await assert.rejects(client.publish("room:a", { text: "slow" }, { id: "msg-1" }), { code: "timeout" });
  assert.deepEqual(await client.publish("room:a", { text: "slow" }, { id: "msg-1" }), { topic: "room:a", offset: 1 });
  assert.equal(server.topic("room:a").events.length, 1);
});

test("a client-made id is reused by a publish joined to it", async (t) => {
  const server = await startServer(t);
  const hold = holdPublishes(server);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  const first = client.publish("room:a", { text: "x" });
  await waitFor(() => hold.held.length === 1);
  const id = hold.held[0][1].id;
  assert.equal(typeof id, "string");
  assert.equal(client.publish("room:a", { text: "x" }, { id }), first, "the same promise");
  hold.release();
  await first;
  assert.equal(server.framesOf("publish").length, 1);
});

test("the same id on another topic is another publish", async (t) => {
  const server = await startServer(t);
  const hold = holdPublishes(server);
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  const a = client.publish("room:a", { text: "a" }, { id: "msg-1" });
  const b = client.publish("room:b", { text: "b" }, { id: "msg-1" });
  await waitFor(() => hold.held.length === 2);
  hold.release();
  assert.deepEqual(await a, { topic: "room:a", offset: 1 });
  assert.deepEqual(await b, { topic: "room:b", offset: 1 });
});

test("an id that is not a string of 1 to 64 characters is refused with a TypeError", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  for (const id of ["", "x".repeat(65), 42, {}]) {
    assert.throws(() => client.publish("room:a", { text: "x" }, { id }), TypeError, String(id));
  }
  assert.equal(client.pendingPublishes, 0);
  // null or undefined: the client makes one; 64 characters are fine.
  await client.publish("room:a", { text: "x" }, { id: null });
  await client.publish("room:a", { text: "y" }, { id: "x".repeat(64) });
  assert.equal(server.framesOf("publish")[1].id, "x".repeat(64));
});

test("a page-given id is kept on every resend: rate limited, dropped before its ack, unavailable", async (t) => {
  const server = await startServer(t);
  const steps = ["rate_limited", "drop", "unavailable"];
  server.intercept = (conn, frame) => {
    if (frame.type !== "publish" || steps.length === 0) return false;
    const step = steps.shift();
    if (step === "drop") {
      server.store(frame.topic, frame.data, frame.id); // stored...
      conn.ws.terminate(); // ...and the ack is lost with the link
    } else {
      server.send(conn, { type: "error", code: step, message: step, ref: frame.ref, retry_after_ms: 10 });
    }
    return true;
  };
  const client = makeClient(t, server.url, { maxDelay: 20 });
  assert.deepEqual(await client.publish("room:a", { text: "hi" }, { id: "page-id" }), { topic: "room:a", offset: 1 });
  const frames = server.framesOf("publish");
  assert.equal(frames.length, 4);
  assert.deepEqual(frames.map((f) => f.id), ["page-id", "page-id", "page-id", "page-id"]);
  assert.equal(new Set(frames.map((f) => f.ref)).size, 4);
  assert.ok(server.connections.length >= 2, "across a reconnect");
  assert.equal(server.topic("room:a").events.length, 1);
});

test("a publish rate limited just before its connection dropped is resent on the next one with its id", async (t) => {
  const server = await startServer(t);
  let refused = false;
  server.intercept = (conn, frame) => {
    if (frame.type !== "publish" || refused) return false;
    refused = true;
    // Dropped as rate limited with a long wait; the link dies meanwhile.
    server.send(conn, { type: "error", code: "rate_limited", message: "Slow down.", ref: frame.ref, retry_after_ms: 60_000 });
    setTimeout(() => conn.ws.terminate(), 20);
    return true;
  };
  const client = makeClient(t, server.url, { maxDelay: 20 });
  assert.deepEqual(await client.publish("room:a", { text: "hi" }, { id: "page-id" }), { topic: "room:a", offset: 1 });
  const frames = server.framesOf("publish");
  assert.deepEqual(frames.map((f) => f.id), ["page-id", "page-id"]);
  assert.equal(server.framesOf("publish", 2).length, 1, "sent again on the new connection without waiting a minute");
});
