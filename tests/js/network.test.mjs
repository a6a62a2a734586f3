// The browser's network state (`online`/`offline`, `navigator.onLine`) and
// the tab's visibility, through the injectable `environment` option.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fakeEnvironment } from "./helpers/environment.mjs";
import { freePort, nextEvent, waitFor } from "./helpers/server.mjs";
import { makeClient, recordStates, startServer } from "./helpers/setup.mjs";

const SLOW = { baseDelay: 60_000, maxDelay: 60_000, random: () => 1 }; // no retry by itself during a test

test("a client made while navigator.onLine is false makes no attempt until online", async (t) => {
  const server = await startServer(t);
  const env = fakeEnvironment({ onLine: false });
  const client = makeClient(t, server.url, { environment: env });
  assert.equal(client.state, "reconnecting");
  assert.equal(client.retryAt, null);
  const states = recordStates(client);
  await sleep(120); // several backoff delays of the test options
  assert.equal(server.connections.length, 0, "no attempt while offline");
  env.goOnline();
  assert.equal(client.state, "connecting", "one attempt at once");
  await waitFor(() => client.state === "open");
  assert.equal(server.connections.length, 1);
  assert.deepEqual(states.map((s) => `${s.state}:${s.reason}`), ["connecting:online", "open:connected"]);
});

test("an offline event closes the open socket at once: reconnecting with cause offline, no attempts", async (t) => {
  const server = await startServer(t);
  const env = fakeEnvironment();
  const client = makeClient(t, server.url, { environment: env });
  await waitFor(() => client.state === "open");
  const states = recordStates(client);
  const closed = nextEvent(client, "close");
  env.goOffline();
  assert.equal(client.state, "reconnecting");
  const last = states.at(-1);
  assert.deepEqual(
    { state: last.state, previous: last.previous, reason: last.reason, cause: last.cause, retryAt: last.retryAt, delay: last.delay },
    { state: "reconnecting", previous: "open", reason: "offline", cause: "offline", retryAt: null, delay: null },
  );
  const event = await closed;
  assert.equal(event.code, 1006);
  assert.equal(event.wasClean, false);
  await waitFor(() => server.connections[0].closed, { message: "the socket closed" });
  await sleep(120);
  assert.equal(server.connections.length, 1, "no attempt while offline");
  assert.equal(states.length, 1, "nothing else happened");
  env.goOnline();
  await waitFor(() => client.state === "open" && server.connections.length === 2);
  assert.equal(states.at(-2).reason, "online");
});

test("an offline event while connecting abandons the attempt", async (t) => {
  const port = await freePort();
  const env = fakeEnvironment();
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`, { environment: env });
  assert.equal(client.state, "connecting");
  const states = recordStates(client);
  env.goOffline();
  assert.equal(client.state, "reconnecting");
  assert.equal(states.at(-1).cause, "offline");
  await sleep(100);
  assert.equal(client.state, "reconnecting");
  assert.equal(states.length, 1);
});

test("an offline event while waiting to reconnect cancels the scheduled try", async (t) => {
  const server = await startServer(t);
  const env = fakeEnvironment();
  const client = makeClient(t, server.url, { environment: env, baseDelay: 80, maxDelay: 80, random: () => 1 });
  await waitFor(() => client.state === "open");
  const states = recordStates(client);
  server.closeAll(1011);
  await waitFor(() => client.state === "reconnecting");
  assert.equal(typeof client.retryAt, "number");
  env.goOffline();
  assert.equal(client.retryAt, null);
  assert.deepEqual(
    states.map((s) => `${s.state}:${s.reason}:${s.cause}`),
    ["reconnecting:server_error:closed", "reconnecting:offline:offline"],
  );
  await sleep(200);
  assert.equal(server.connections.length, 1);
  env.goOffline(); // said again: nothing new
  assert.equal(states.length, 2);
});

test("a publish made while offline waits in the queue without timing out and goes out once online", async (t) => {
  const server = await startServer(t);
  const env = fakeEnvironment();
  const client = makeClient(t, server.url, { environment: env, publishTimeout: 40 });
  await waitFor(() => client.state === "open");
  env.goOffline();
  const pending = client.publish("room:a", { text: "later" }, { id: "msg-off" });
  await sleep(150); // several publish timeouts
  assert.equal(client.pendingPublishes, 1);
  env.goOnline();
  assert.deepEqual(await pending, { topic: "room:a", offset: 1 });
  const frames = server.framesOf("publish");
  assert.equal(frames.length, 1);
  assert.equal(frames[0].id, "msg-off");
});

test("a publish in flight when the browser goes offline is resent with its id once online", async (t) => {
  const server = await startServer(t);
  let swallow = true;
  server.intercept = (conn, frame) => frame.type === "publish" && swallow;
  const env = fakeEnvironment();
  const client = makeClient(t, server.url, { environment: env, publishTimeout: 60 });
  await waitFor(() => client.state === "open");
  const pending = client.publish("room:a", { text: "in flight" });
  await waitFor(() => server.framesOf("publish").length === 1);
  env.goOffline();
  await sleep(150); // longer than publishTimeout, but not sent meanwhile
  swallow = false;
  env.goOnline();
  assert.deepEqual(await pending, { topic: "room:a", offset: 1 });
  const ids = server.framesOf("publish").map((f) => f.id);
  assert.equal(ids.length, 2);
  assert.equal(ids[0], ids[1]);
});

test("online tries once at once, then backs off as usual from the first delay", async (t) => {
  const port = await freePort();
  const env = fakeEnvironment();
  const client = makeClient(t, `ws://127.0.0.1:${port}/ws/`, { environment: env, baseDelay: 20, maxDelay: 10_000, random: () => 1 });
  const states = recordStates(client);
  await waitFor(() => states.filter((s) => s.state === "reconnecting").length >= 3, { message: "three failed tries" });
  env.goOffline();
  assert.equal(states.at(-1).cause, "offline");
  const before = states.length;
  env.goOnline();
  await waitFor(() => states.length >= before + 2, { message: "the attempt and its failure" });
  const [attempt, failed] = states.slice(before);
  assert.equal(`${attempt.state}:${attempt.reason}`, "connecting:online");
  assert.equal(failed.state, "reconnecting");
  assert.equal(failed.cause, "unreachable");
  assert.equal(failed.delay, 20, "the backoff starts over: the network changed");
});

test("the tab becoming visible while reconnecting tries at once, but not while offline", async (t) => {
  const server = await startServer(t);
  const env = fakeEnvironment({ visibilityState: "hidden" });
  const client = makeClient(t, server.url, { environment: env, ...SLOW });
  await waitFor(() => client.state === "open");
  server.closeAll(1011);
  await waitFor(() => client.state === "reconnecting");
  env.setVisibility("hidden");
  await sleep(20);
  assert.equal(server.connections.length, 1);
  env.setVisibility("visible");
  assert.equal(client.state, "connecting");
  await waitFor(() => client.state === "open" && server.connections.length === 2);
  env.setVisibility("hidden");
  env.goOffline();
  env.setVisibility("visible");
  await sleep(60);
  assert.equal(client.state, "reconnecting");
  assert.equal(server.connections.length, 2, "no attempt while offline");
});

test("an online event with navigator.onLine still false makes no attempt", async (t) => {
  const server = await startServer(t);
  const env = fakeEnvironment({ onLine: false });
  const client = makeClient(t, server.url, { environment: env });
  env.dispatchEvent(new Event("online")); // the navigator still says offline
  await sleep(60);
  assert.equal(client.state, "reconnecting");
  assert.equal(server.connections.length, 0);
});

test("close() stops listening to the environment", async (t) => {
  const server = await startServer(t);
  const env = fakeEnvironment();
  const client = makeClient(t, server.url, { environment: env });
  await waitFor(() => client.state === "open");
  assert.deepEqual(Object.fromEntries(env.listening), { offline: 1, online: 1, visibilitychange: 1 });
  client.close();
  assert.deepEqual(Object.fromEntries(env.listening), { offline: 0, online: 0, visibilitychange: 0 });
  env.goOffline();
  env.goOnline();
  assert.equal(client.state, "closed");
});

test("by default the client listens on globalThis and reads the global navigator", async (t) => {
  const server = await startServer(t);
  const target = new EventTarget();
  globalThis.addEventListener = target.addEventListener.bind(target);
  globalThis.removeEventListener = target.removeEventListener.bind(target);
  globalThis.navigator = { onLine: true };
  t.after(() => {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
    delete globalThis.navigator;
  });
  const client = makeClient(t, server.url);
  await waitFor(() => client.state === "open");
  const states = recordStates(client);
  globalThis.navigator.onLine = false;
  target.dispatchEvent(new Event("offline"));
  assert.equal(client.state, "reconnecting");
  assert.equal(states.at(-1).cause, "offline");
  globalThis.navigator.onLine = true;
  target.dispatchEvent(new Event("online"));
  await waitFor(() => client.state === "open" && server.connections.length === 2);
});
