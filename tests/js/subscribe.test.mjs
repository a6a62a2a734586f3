import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { nextEvent, waitFor } from "./helpers/server.mjs";
import { RealtimeClient, makeClient, recordStates, startServer } from "./helpers/setup.mjs";

/** A handler that records the offsets it receives. */
function collector() {
  const events = [];
  const handler = (event) => events.push(event);
  handler.events = events;
  handler.offsets = () => events.map((e) => e.offset);
  return handler;
}

test("the client asks for the realtime.v1 subprotocol and ready resolves with the subscribed frame", async (t) => {
  const server = await startServer(t);
  server.store("room:a", { text: "old" });
  const client = makeClient(t, server.url);
  const sub = client.subscribe("room:a", () => {});
  const frame = await sub.ready;
  assert.equal(server.last.protocol, "realtime.v1");
  assert.equal(client.protocol, "realtime.v1");
  assert.equal(frame.type, "subscribed");
  assert.equal(frame.topic, "room:a");
  assert.equal(frame.offset, 1);
  assert.equal(sub.topic, "room:a");
  assert.equal(sub.offset, 1, "the subscribed offset is the baseline");
  assert.equal(client.welcome.connection_id, "c1");
  const [subscribe] = server.framesOf("subscribe");
  assert.equal(typeof subscribe.ref, "string");
  assert.equal("since" in subscribe, false, "no since when none was given");
});

test("the handler receives each event frame with topic, offset, ts and data", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const handler = collector();
  const messages = [];
  client.addEventListener("message", (e) => messages.push(e.detail.type));
  const sub = client.subscribe("room:a", handler);
  await sub.ready;
  server.publish("room:a", { text: "hi" });
  server.publish("room:b", { text: "not subscribed" });
  await waitFor(() => handler.events.length === 1);
  const [event] = handler.events;
  assert.equal(event.topic, "room:a");
  assert.equal(event.offset, 1);
  assert.equal(typeof event.ts, "string");
  assert.deepEqual(event.data, { text: "hi" });
  assert.equal(sub.offset, 1);
  assert.deepEqual(messages, ["welcome", "subscribed", "event"]);
});

test("subscribe with since replays the events after it", async (t) => {
  const server = await startServer(t);
  for (const n of [1, 2, 3, 4]) server.store("room:a", { n });
  const client = makeClient(t, server.url);
  const handler = collector();
  const sub = client.subscribe("room:a", handler, { since: 2 });
  await sub.ready;
  await waitFor(() => handler.events.length === 2);
  assert.deepEqual(handler.offsets(), [3, 4]);
  assert.equal(server.framesOf("subscribe")[0].since, 2);
  assert.equal(sub.offset, 4);
});

test("events with an offset already seen are dropped", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const handler = collector();
  await client.subscribe("room:a", handler).ready;
  const events = [1, 2, 3].map((n) => server.store("room:a", { n }));
  const conn = server.last;
  for (const event of [events[0], events[1], events[1], events[0], events[2], events[2]]) server.send(conn, event);
  await waitFor(() => handler.events.length >= 3);
  await sleep(30);
  assert.deepEqual(handler.offsets(), [1, 2, 3]);
});

test("an offset gap resubscribes with since = the last offset seen and the replay fills it in order", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const handler = collector();
  const sub = client.subscribe("room:a", handler);
  await sub.ready;
  server.publish("room:a", { n: 1 });
  await waitFor(() => handler.events.length === 1);
  server.store("room:a", { n: 2 }); // missed by the client
  server.store("room:a", { n: 3 }); // missed by the client
  server.publish("room:a", { n: 4 }); // arrives: a gap after 1
  await waitFor(() => handler.events.length === 4, { message: "the replay" });
  assert.deepEqual(handler.offsets(), [1, 2, 3, 4]);
  const subscribes = server.framesOf("subscribe");
  assert.equal(subscribes.length, 2);
  assert.equal(subscribes[1].since, 1);
  assert.equal(subscribes[1].topic, "room:a");
  assert.equal(server.framesOf("unsubscribe").length, 0);
  assert.equal(sub.offset, 4);
});

test("several events past a gap send one resubscription", async (t) => {
  const server = await startServer(t);
  server.intercept = (conn, frame) => {
    // Answer the re-sync late, so more gap events arrive before it.
    if (frame.type === "subscribe" && frame.since !== undefined) {
      setTimeout(() => server.subscribe(conn, frame), 40);
      return true;
    }
    return false;
  };
  const client = makeClient(t, server.url);
  const handler = collector();
  await client.subscribe("room:a", handler).ready;
  server.store("room:a", { n: 1 });
  server.publish("room:a", { n: 2 });
  server.publish("room:a", { n: 3 });
  server.publish("room:a", { n: 4 });
  await waitFor(() => handler.events.length === 4);
  await sleep(30);
  assert.deepEqual(handler.offsets(), [1, 2, 3, 4]);
  assert.equal(server.framesOf("subscribe").filter((f) => f.since !== undefined).length, 1);
});

test("subscribed with recovered false fires resync and continues from its offset", async (t) => {
  const server = await startServer(t);
  for (let n = 1; n <= 10; n++) server.store("room:a", { n });
  server.topic("room:a", { retainedFrom: 6 }); // 1 to 5 are gone
  const client = makeClient(t, server.url);
  const handler = collector();
  const resync = nextEvent(client, "resync");
  const sub = client.subscribe("room:a", handler, { since: 2 });
  const frame = await sub.ready;
  assert.equal(frame.recovered, false);
  const event = await resync;
  assert.deepEqual(event.detail, { topic: "room:a", offset: 10 });
  assert.equal(sub.offset, 10);
  server.publish("room:a", { n: 11 });
  await waitFor(() => handler.events.length === 1);
  assert.deepEqual(handler.offsets(), [11], "nothing replayed, live events continue");
});

test("a server whose history went backwards fires resync", async (t) => {
  const server = await startServer(t);
  server.store("room:a", { n: 1 });
  const client = makeClient(t, server.url);
  const resync = nextEvent(client, "resync");
  const sub = client.subscribe("room:a", () => {}, { since: 7 });
  await sub.ready;
  assert.deepEqual((await resync).detail, { topic: "room:a", offset: 1 });
  assert.equal(sub.offset, 1);
});

test("on reconnect every topic is resubscribed with since = the last offset seen", async (t) => {
  const server = await startServer(t);
  for (let n = 1; n <= 7; n++) server.store("broadcast", { n });
  server.topic("dashboard", { history: false });
  const client = makeClient(t, server.url);
  const room = collector();
  const dashboard = collector();
  const rooms = client.subscribe("room:a", room);
  const broadcast = client.subscribe("broadcast", () => {});
  const dash = client.subscribe("dashboard", dashboard);
  await Promise.all([rooms.ready, broadcast.ready, dash.ready]);
  for (const n of [1, 2, 3]) server.publish("room:a", { n });
  server.publish("dashboard", { connections: 1 });
  await waitFor(() => room.events.length === 3 && dashboard.events.length === 1);
  assert.equal(dash.offset, null);

  server.closeAll(1011);
  server.store("room:a", { n: 4 }); // published during the outage
  server.store("room:a", { n: 5 });
  await waitFor(() => server.connections.length === 2 && client.state === "open");
  await waitFor(() => room.events.length === 5);

  const again = server.framesOf("subscribe", 2);
  const byTopic = Object.fromEntries(again.map((f) => [f.topic, f]));
  assert.deepEqual(Object.keys(byTopic).sort(), ["broadcast", "dashboard", "room:a"]);
  assert.equal(byTopic["room:a"].since, 3);
  assert.equal(byTopic.broadcast.since, 7, "the subscribed offset was the baseline");
  assert.equal("since" in byTopic.dashboard, false, "no since on a topic without history");
  assert.deepEqual(room.offsets(), [1, 2, 3, 4, 5], "missed events once, in order");
  assert.equal(rooms.offset, 5);
});

test("a refused subscription rejects ready with the error code and is not retried", async (t) => {
  const server = await startServer(t);
  server.topic("user:2", { forbidden: true });
  const client = makeClient(t, server.url);
  const sub = client.subscribe("user:2", () => {});
  await assert.rejects(sub.ready, (err) => {
    assert.ok(err instanceof Error);
    assert.equal(err.code, "forbidden");
    assert.equal(err.topic, "user:2");
    return true;
  });
  assert.equal(sub.active, false);
  server.closeAll(1011);
  await waitFor(() => server.connections.length === 2 && client.state === "open");
  await sleep(20);
  assert.equal(server.framesOf("subscribe", 2).length, 0);
});

test("a rate limited subscription is asked again after retry_after_ms", async (t) => {
  const server = await startServer(t);
  let refused = false;
  server.intercept = (conn, frame) => {
    if (frame.type !== "subscribe" || refused) return false;
    refused = true;
    server.send(conn, { type: "error", code: "rate_limited", message: "Slow down.", ref: frame.ref, retry_after_ms: 30 });
    return true;
  };
  const client = makeClient(t, server.url);
  const frame = await client.subscribe("room:a", () => {}).ready;
  assert.equal(frame.type, "subscribed");
  assert.equal(server.framesOf("subscribe").length, 2);
});

test("unsubscribe leaves the topic and it is not resubscribed after a reconnect", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const handler = collector();
  const sub = client.subscribe("room:a", handler);
  await sub.ready;
  server.publish("room:a", { n: 1 });
  await waitFor(() => handler.events.length === 1);
  sub.unsubscribe();
  assert.equal(sub.active, false);
  assert.equal(sub.offset, 1);
  await waitFor(() => server.framesOf("unsubscribe").length === 1);
  assert.equal(server.framesOf("unsubscribe")[0].topic, "room:a");
  server.send(server.last, server.store("room:a", { n: 2 }));
  server.closeAll(1011);
  await waitFor(() => server.connections.length === 2 && client.state === "open");
  await sleep(20);
  assert.equal(server.framesOf("subscribe", 2).length, 0);
  assert.deepEqual(handler.offsets(), [1]);
});

test("two subscriptions to one topic share it and both receive its events", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const a = collector();
  const b = collector();
  const first = client.subscribe("room:a", a);
  await first.ready;
  const second = client.subscribe("room:a", b);
  assert.equal((await second.ready).topic, "room:a");
  assert.equal(server.framesOf("subscribe").length, 1);
  server.publish("room:a", { n: 1 });
  await waitFor(() => a.events.length === 1 && b.events.length === 1);
  first.unsubscribe();
  assert.equal(server.framesOf("unsubscribe").length, 0, "the topic is still in use");
  server.publish("room:a", { n: 2 });
  await waitFor(() => b.events.length === 2);
  assert.equal(a.events.length, 1);
});

test("presence frames reach onPresence with the current users, applied idempotently", async (t) => {
  const server = await startServer(t);
  const alice = { id: 1, username: "alice" };
  const bob = { id: 2, username: "bob" };
  server.topic("room:a", { presence: true, users: [alice] });
  const client = makeClient(t, server.url);
  const seen = [];
  const sub = client.subscribe("room:a", () => {}, {
    onPresence: (users, frame) => seen.push([frame.type, users.map((u) => u.username).sort()]),
  });
  await sub.ready;
  await waitFor(() => seen.length === 1);
  server.broadcast("room:a", { type: "presence_diff", topic: "room:a", joins: [bob, alice], leaves: [] });
  server.broadcast("room:a", { type: "presence_diff", topic: "room:a", joins: [], leaves: [alice] });
  await waitFor(() => seen.length === 3);
  assert.deepEqual(seen, [
    ["presence_state", ["alice"]],
    ["presence_diff", ["alice", "bob"]],
    ["presence_diff", ["bob"]],
  ]);
  assert.deepEqual(sub.presence, [bob]);
});

test("the default url is /ws/ on the page's host, with wss: on https", async (t) => {
  const server = await startServer(t);
  t.after(() => delete globalThis.location);
  globalThis.location = new URL(`http://127.0.0.1:${server.port}/rooms/general/`);
  const client = makeClient(t, undefined);
  assert.equal(client.url, `ws://127.0.0.1:${server.port}/ws/`);
  await waitFor(() => client.state === "open");
  assert.equal(server.last.path, "/ws/");
  client.close();

  globalThis.location = new URL(`https://127.0.0.1:${server.port}/`);
  const secure = makeClient(t, undefined);
  assert.equal(secure.url, `wss://127.0.0.1:${server.port}/ws/`);
  secure.close();

  const absolute = makeClient(t, `wss://127.0.0.1:${server.port}/ws/`);
  assert.equal(absolute.url, `wss://127.0.0.1:${server.port}/ws/`);
  absolute.close();
  assert.throws(() => new RealtimeClient("ftp://127.0.0.1/ws/"), SyntaxError);
});

test("the debug option logs state changes with console.debug", async (t) => {
  const server = await startServer(t);
  const debug = t.mock.method(console, "debug", () => {});
  const client = makeClient(t, server.url, { debug: true });
  await waitFor(() => client.state === "open");
  assert.ok(debug.mock.calls.some((call) => call.arguments.join(" ").includes("connecting -> open")));
  debug.mock.resetCalls();
  const quiet = makeClient(t, server.url);
  await waitFor(() => quiet.state === "open");
  assert.equal(debug.mock.calls.length, 0);
});

test("send() sends a raw frame when open and returns false otherwise", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const states = recordStates(client);
  assert.equal(client.send({ type: "ping", ref: "raw" }), false);
  await waitFor(() => client.state === "open");
  const pong = nextEvent(client, "message", { filter: (e) => e.detail.type === "pong" });
  assert.equal(client.send({ type: "ping", ref: "raw" }), true);
  assert.equal((await pong).detail.ref, "raw");
  assert.ok(states.length > 0);
});

test("a subscribe refused as unavailable is asked again after retry_after_ms", async (t) => {
  const server = await startServer(t);
  let refusals = 2;
  server.intercept = (conn, frame) => {
    if (frame.type !== "subscribe" || refusals === 0) return false;
    refusals -= 1;
    server.send(conn, { type: "error", code: "unavailable", message: "Broker down.", ref: frame.ref, topic: frame.topic, retry_after_ms: 20 });
    return true;
  };
  const client = makeClient(t, server.url);
  const frame = await client.subscribe("room:a", () => {}).ready;
  assert.equal(frame.type, "subscribed");
  assert.equal(server.framesOf("subscribe").length, 3);
});

test("subscribe with presence false says so in its subscribe frame", async (t) => {
  const server = await startServer(t);
  const client = makeClient(t, server.url);
  const sub = client.subscribe("room:a", () => {}, { since: 2, presence: false });
  await sub.ready;
  const plain = client.subscribe("room:b", () => {});
  await plain.ready;
  const [first, other] = server.framesOf("subscribe");
  assert.equal(first.presence, false);
  assert.equal("presence" in other, false, "presence is only sent when false");
});
