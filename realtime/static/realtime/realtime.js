// @ts-check
/**
 * realtime.js: the browser client of the site's real-time protocol, version 1
 * (PROTOCOL.md). The one entry point, an ES module with no dependencies but
 * its parts in `client/` (imported by relative URL), and one export:
 * `RealtimeClient`.
 *
 * ```js
 * import { RealtimeClient } from "/static/realtime/realtime.js";
 *
 * const client = new RealtimeClient();            // ws[s]://<this host>/ws/, session cookie auth
 * client.addEventListener("statechange", (e) => badge.textContent = e.detail.state);
 * client.addEventListener("resync", (e) => reloadOverRest(e.detail.topic));
 *
 * const sub = client.subscribe("room:general", (event) => show(event.data), {
 *   since: lastOffsetRenderedByServer,            // optional: replay what came after it
 *   onPresence: (users) => renderWhoIsOnline(users),
 * });
 * await sub.ready;                                // rejects with err.code, e.g. "forbidden"
 *
 * const { offset } = await client.publish("room:general", { text: "hello" });
 * ```
 *
 * Shaped like `WebSocket` (and like reconnecting-websocket): it extends
 * `EventTarget`, fires `open`, `message`, `error` and `close` (also as
 * `onopen`/`onmessage`/`onerror`/`onclose`), has `send()`, `close()` and
 * `readyState`. On top of that it keeps the connection alive (heartbeat,
 * reconnection with backoff), resubscribes and recovers by offset, and
 * delivers publishes exactly once (client message ids, resent after a lost ack).
 *
 * Events fired on the client:
 * - `open`: a socket opened (every reconnect too).
 * - `message`: every server frame, parsed, as `event.detail` (`event`, `ack`,
 *   `error`, `presence_state`, `presence_diff`, `welcome`, ... all of them).
 * - `error`: a socket error, or a close that the client will not recover from
 *   because it was our fault (4003 binary frame, 4009 frame too large).
 * - `close`: a socket closed (every drop, not only the last one), with `code`,
 *   `reason` and `wasClean` of that socket. A dead socket that the client
 *   abandons (heartbeat or connect timeout) reports code 1006.
 * - `statechange`: `detail: {state, previous, reason, retryAt, delay, code}`.
 *   `retryAt` (epoch ms) and `delay` (ms) are set while `reconnecting`, else null;
 *   `code` is the close code behind the change, or null.
 * - `resync`: `detail: {topic, offset}`: events of a subscribed topic were lost
 *   (no longer retained, or the server's history went backwards): reload the
 *   topic's state over REST; live events continue after `offset`.
 *
 * `state` reasons (strings a page can map to words):
 * - `connecting`: `initial`, `retry`, `online`, `visible`
 * - `open`: `connected`
 * - `reconnecting` (will retry): `server_restart` (4012), `connection_lost` (1006),
 *   `server_error` (1011), `too_slow` (4008), `rate_limited` (4429),
 *   `heartbeat_timeout`, `connect_timeout`, `connection_closed` (any other code)
 * - `closed` (stays closed): `client_closed` (our own `close()`), `normal_closure`
 *   (1000 from the server), `disconnected_by_admin` (4000), `binary_frame` (4003),
 *   `frame_too_large` (4009), `signed_out` (4401), `too_many_connections` (4029)
 *
 * This module holds the socket, the heartbeat and the state machine; the
 * rest is delegated to `client/`: `backoff.js` (the reconnection timer),
 * `subscription.js` (one topic's state and the subscriptions to it),
 * `push.js` (one publish waiting for its ack), `outbox.js` (the publishes
 * not yet acked and their pacing), `frames.js`, `errors.js` and `events.js`.
 *
 * @module realtime
 */
import { BACKOFF_DEFAULTS, Backoff, backoffDelay } from "./client/backoff.js";
import { closedError, errorFromFrame, realtimeError, report } from "./client/errors.js";
import { closeEvent, detailEvent } from "./client/events.js";
import { MAX_FRAME_BYTES } from "./client/frames.js";
import { Outbox } from "./client/outbox.js";
import { Push } from "./client/push.js";
import { Subscription, Topic } from "./client/subscription.js";

/** @typedef {import("./client/frames.js").Frame} Frame */
/** @typedef {import("./client/frames.js").EventFrame} EventFrame */
/** @typedef {import("./client/frames.js").PresenceUser} PresenceUser */
/** @typedef {import("./client/errors.js").RealtimeError} RealtimeError */

/** @typedef {"connecting"|"open"|"reconnecting"|"closed"} State */

/**
 * @typedef {object} StateChange
 * @property {State} state
 * @property {State} previous
 * @property {string} reason     see the list of reasons above
 * @property {number|null} retryAt  epoch ms of the next try, while reconnecting
 * @property {number|null} delay    ms until the next try, while reconnecting
 * @property {number|null} code     the close code behind the change, if any
 */

/**
 * Options of `new RealtimeClient(url, options)`. Times are in milliseconds.
 * @typedef {object} RealtimeOptions
 * @property {string|string[]} [protocols]  subprotocols asked for (default `["realtime.v1"]`)
 * @property {number} [baseDelay]        backoff base: try k waits random [0, min(maxDelay, baseDelay * 2^k)] (500)
 * @property {number} [maxDelay]         backoff cap (30000)
 * @property {number} [restartJitterMs]  after close 4012, the first try waits random [0, restartJitterMs] (5000)
 * @property {number} [minUptime]        a connection that stayed open this long resets the backoff (5000)
 * @property {number} [connectTimeout]   an attempt not open by then is abandoned and counts as failed (10000)
 * @property {number|null} [heartbeatMs] ping interval; null: `welcome.heartbeat` seconds (25 s until welcome)
 * @property {number} [publishTimeout]   a sent publish without ack or error by then rejects with code `timeout` (10000)
 * @property {number} [maxQueue]         publishes kept while not connected; more reject with `queue_full` (100)
 * @property {number} [publishBurst]     publishes sent back to back before pacing starts (20)
 * @property {number} [publishRate]      publishes per second once the burst is spent (10); both stay
 *                                       under the server's default limit (bursts of 30, 15 a second)
 * @property {() => number} [random]     source of jitter in [0, 1) (Math.random)
 * @property {boolean} [debug]           log state changes and frames with console.debug (false)
 * @property {any} [WebSocket]           WebSocket constructor (the global `WebSocket`)
 */

/** @type {Required<RealtimeOptions>} */
const DEFAULTS = Object.freeze({
  protocols: ["realtime.v1"],
  baseDelay: BACKOFF_DEFAULTS.baseDelay,
  maxDelay: BACKOFF_DEFAULTS.maxDelay,
  restartJitterMs: 5_000,
  minUptime: 5_000,
  connectTimeout: 10_000,
  heartbeatMs: null,
  publishTimeout: 10_000,
  maxQueue: 100,
  publishBurst: 20,
  publishRate: 10,
  random: BACKOFF_DEFAULTS.random,
  debug: false,
  WebSocket: null,
});

const DEFAULT_HEARTBEAT_MS = 25_000;

/**
 * What each close code means to the client: [reason, reconnect?]. Codes not
 * listed reconnect with reason `connection_closed`.
 * @type {Record<number, [string, boolean]>}
 */
const CLOSE_POLICY = {
  1000: ["normal_closure", false],
  4000: ["disconnected_by_admin", false],
  4003: ["binary_frame", false],
  4009: ["frame_too_large", false],
  4401: ["signed_out", false],
  4029: ["too_many_connections", false],
  4012: ["server_restart", true],
  1006: ["connection_lost", true],
  1011: ["server_error", true],
  4008: ["too_slow", true],
  4429: ["rate_limited", true],
};
/** Closes that were our fault: reported as `error` too. */
const ERROR_CLOSES = new Set([4003, 4009]);

/** Refusals that mean "not now": the request is sent again after `retry_after_ms`. */
const RETRIED_CODES = new Set(["rate_limited", "unavailable"]);

/**
 * The socket URL: `/ws/` on the page's host by default; relative URLs resolve
 * against the page, `http(s):` becomes `ws(s):`.
 * @param {string|URL|undefined} url
 */
function resolveUrl(url) {
  const base = globalThis.location ? globalThis.location.href : undefined;
  if (url === undefined || url === null || url === "") {
    if (!base) throw new TypeError("RealtimeClient: no url given and no location to derive it from");
    url = "/ws/";
  }
  const resolved = new URL(String(url), base);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  else if (resolved.protocol === "https:") resolved.protocol = "wss:";
  if (resolved.protocol !== "ws:" && resolved.protocol !== "wss:") {
    throw new SyntaxError(`RealtimeClient: not a WebSocket URL: ${resolved.href}`);
  }
  return resolved.href;
}

/**
 * A WebSocket to the site that stays connected: see the module's comment.
 */
export class RealtimeClient extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  /**
   * The backoff before try `attempt` (0 for the first retry): a random time
   * in [0, min(maxDelay, baseDelay * 2^attempt)] ("full jitter").
   * @param {number} attempt
   * @param {{baseDelay?: number, maxDelay?: number, random?: () => number}} [options]
   * @returns {number} milliseconds
   */
  static backoffDelay(attempt, options = {}) {
    return backoffDelay(attempt, options);
  }

  /** @type {((event: Event) => any) | null} */
  onopen = null;
  /** @type {((event: CustomEvent<Frame>) => any) | null} */
  onmessage = null;
  /** @type {((event: Event) => any) | null} */
  onerror = null;
  /** @type {((event: CloseEvent) => any) | null} */
  onclose = null;

  /** @type {Required<RealtimeOptions>} */
  #opts;
  /** @type {State} */
  #state = "connecting";
  /** @type {any} the current socket, null between attempts and once closed */
  #ws = null;
  /** @type {Backoff} the timer of the next try */
  #backoff;
  /** @type {any} */
  #connectTimer = null;
  /** @type {any} */
  #heartbeatTimer = null;
  #unanswered = 0;
  #openedAt = 0;
  #refSeq = 0;
  #stopped = false;
  /** @type {Frame|null} */
  #welcome = null;
  /** @type {Map<string, Topic>} */
  #topics = new Map();
  /** @type {Map<string, {kind: "subscribe", topic: string} | {kind: "publish", push: Push} | {kind: "ping"}>} */
  #pending = new Map();
  /** @type {Outbox} publishes not yet acked, in order */
  #outbox;
  /** @type {Set<any>} timers that die with the connection */
  #connectionTimers = new Set();
  #onOnline = () => this.#wake("online");
  #onVisibility = () => {
    if (globalThis.document && globalThis.document.visibilityState === "visible") this.#wake("visible");
  };

  /**
   * Starts connecting at once.
   * @param {string|URL} [url]  default `/ws/` on the page's host (`wss:` on HTTPS)
   * @param {RealtimeOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    /** @type {Record<string, any>} */
    const opts = { ...DEFAULTS };
    for (const [key, value] of Object.entries(options)) if (value !== undefined) opts[key] = value;
    this.#opts = /** @type {Required<RealtimeOptions>} */ (opts);
    this.#backoff = new Backoff(this.#opts);
    this.#outbox = new Outbox(this.#opts, () => this.#state === "open", (push) => this.#sendPublish(push));
    /** @readonly */
    this.url = resolveUrl(url);
    this.#connect("initial");
    const win = globalThis.window;
    if (win && typeof win.addEventListener === "function") win.addEventListener("online", this.#onOnline);
    const doc = globalThis.document;
    if (doc && typeof doc.addEventListener === "function") doc.addEventListener("visibilitychange", this.#onVisibility);
  }

  get CONNECTING() {
    return 0;
  }
  get OPEN() {
    return 1;
  }
  get CLOSING() {
    return 2;
  }
  get CLOSED() {
    return 3;
  }

  /** `connecting`, `open`, `reconnecting` or `closed`. */
  get state() {
    return this.#state;
  }

  /** Like `WebSocket.readyState`: CONNECTING also while waiting to reconnect. */
  get readyState() {
    if (this.#state === "open") return RealtimeClient.OPEN;
    if (this.#state === "closed") return this.#ws ? RealtimeClient.CLOSING : RealtimeClient.CLOSED;
    return RealtimeClient.CONNECTING;
  }

  /** Epoch ms of the next try while `reconnecting`, else null. */
  get retryAt() {
    return this.#backoff.retryAt;
  }

  /** How many publishes wait for their ack (queued offline, paced, or in flight). */
  get pendingPublishes() {
    return this.#outbox.size;
  }

  /** The last `welcome` frame (with `user` and `connection_id`), or null. */
  get welcome() {
    return this.#welcome;
  }

  /** The subprotocol the server accepted ("" when none, or not connected). */
  get protocol() {
    return this.#ws && this.#state === "open" ? this.#ws.protocol : "";
  }

  /**
   * Join `topic`: `handler` receives each of its `event` frames once, in
   * offset order. Presence frames (`presence_state`, `presence_diff`) go to
   * `options.onPresence(users, frame)` with the whole current list of users,
   * and also arrive as `message` events. After a reconnect the topic is joined
   * again with `since` = the last offset seen; a second subscription to a topic
   * already joined shares it (its `since` is then ignored). If the server later
   * refuses the topic (say, after a reconnect), it is dropped: `active` turns
   * false and the `error` frame arrives as a `message` event.
   * @param {string} topic
   * @param {(event: EventFrame) => void} handler
   * @param {{since?: number|null, onPresence?: (users: PresenceUser[], frame: Frame) => void}} [options]
   * @returns {Subscription}
   */
  subscribe(topic, handler, options = {}) {
    if (typeof topic !== "string" || topic === "") throw new TypeError("subscribe: topic must be a non-empty string");
    if (typeof handler !== "function") throw new TypeError("subscribe: handler must be a function");
    /** @param {Subscription} sub */
    const leave = (sub) => this.#leave(sub);
    if (this.#stopped) {
      const sub = new Subscription(topic, handler, options.onPresence, leave, null);
      sub.drop(realtimeError("closed", "The client is closed", { topic }), null);
      return sub;
    }
    let state = this.#topics.get(topic);
    if (state) return state.join(handler, options.onPresence, leave);
    state = new Topic(topic, options.since);
    const sub = state.join(handler, options.onPresence, leave);
    this.#topics.set(topic, state);
    if (this.#state === "open") this.#sendSubscribe(state);
    return sub;
  }

  /**
   * Publish `data` on `topic`. Resolves with `{topic, offset}` from the `ack`;
   * rejects with an Error whose `code` is the error frame's (`invalid`,
   * `forbidden`, `not_found`, ...), or the client's own:
   * `timeout` (no answer within `publishTimeout` of sending), `queue_full`
   * (not connected and `maxQueue` publishes already waiting), `too_large`
   * (the frame would pass 64 KiB), `closed` (the client closed for good; the
   * Error's `reason` says why). While not connected the publish waits without
   * a timeout; a publish whose connection dropped before its ack is sent again
   * with the same `id`, so the server stores it once. A publish the server
   * dropped with `rate_limited` is sent again (same `id`) after
   * `retry_after_ms`, up to 5 times; then it rejects with code `rate_limited`
   * and `retryAfterMs`. One refused as `unavailable` (the server's database or
   * broker is down; nothing was stored) is sent again the same way, up to 30
   * times. A subscribe refused with either code is asked again after
   * `retry_after_ms`. Publishes are paced (`publishBurst`, `publishRate`),
   * so a long offline queue does not flood the server after a reconnect; a
   * publish waiting for its turn does not time out either. Publishes are sent
   * in call order; only one that the server drops as rate limited can land
   * after later ones.
   * @param {string} topic
   * @param {Record<string, any>} data
   * @returns {Promise<{topic: string, offset: number|null}>}
   */
  publish(topic, data) {
    return new Promise((resolve, reject) => {
      if (this.#stopped) {
        reject(realtimeError("closed", "The client is closed", { topic, reason: this.#closedReason }));
        return;
      }
      const push = new Push(topic, data, resolve, reject);
      const size = push.bytes();
      if (size > MAX_FRAME_BYTES) {
        reject(realtimeError("too_large", `The frame would be ${size} bytes, more than ${MAX_FRAME_BYTES}`, { topic }));
        return;
      }
      if (this.#state === "open") {
        this.#outbox.add(push);
        this.#outbox.pump();
        return;
      }
      if (this.#outbox.full) {
        reject(realtimeError("queue_full", `Offline queue is full (${this.#opts.maxQueue} publishes waiting)`, { topic }));
        return;
      }
      this.#outbox.add(push);
      this.#log("queued publish", push.id, "on", topic);
    });
  }

  /**
   * Send a raw protocol frame (an object, serialized as JSON, or a string).
   * @param {Frame|string} frame
   * @returns {boolean} false when not connected (the frame is dropped)
   */
  send(frame) {
    if (this.#state !== "open") return false;
    this.#ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    return true;
  }

  /**
   * Close the connection and stop reconnecting. Waiting publishes reject with
   * code `closed`.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason) {
    if (this.#stopped) return;
    const ws = this.#ws;
    this.#terminate("client_closed", null);
    if (!ws) return;
    try {
      ws.close(code, reason);
    } catch (err) {
      ws.close();
    }
  }

  // ---- connection ---------------------------------------------------------

  /** @type {string|undefined} */
  #closedReason;

  /** @param {string} reason */
  #connect(reason) {
    this.#backoff.cancel();
    const WebSocketImpl = this.#opts.WebSocket || globalThis.WebSocket;
    if (!WebSocketImpl) throw new Error("RealtimeClient: no WebSocket here; pass options.WebSocket");
    let ws;
    try {
      ws = new WebSocketImpl(this.url, this.#opts.protocols);
    } catch (err) {
      if (reason === "initial") throw err;
      report(err);
      this.#setState("connecting", reason);
      this.#dropped(1006, "", false, "connection_lost");
      return;
    }
    this.#ws = ws;
    this.#setState("connecting", reason);
    this.#connectTimer = setTimeout(() => this.#abandon(ws, "connect_timeout"), this.#opts.connectTimeout);
    ws.addEventListener("open", () => ws === this.#ws && this.#handleOpen());
    ws.addEventListener("message", (/** @type {MessageEvent} */ event) => ws === this.#ws && this.#handleMessage(event));
    ws.addEventListener("error", () => {
      if (ws === this.#ws) this.#emit(new Event("error"));
    });
    ws.addEventListener("close", (/** @type {CloseEvent} */ event) => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      this.#dropped(event.code, event.reason || "", event.wasClean, null);
    });
  }

  #handleOpen() {
    clearTimeout(this.#connectTimer);
    this.#openedAt = Date.now();
    const previous = this.#state;
    this.#state = "open";
    this.#startHeartbeat(this.#opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
    // Resubscribe first, then the publishes that waited, in order.
    for (const state of this.#topics.values()) if (state.ref === null) this.#sendSubscribe(state);
    this.#outbox.refill();
    this.#outbox.pump();
    this.#announce(previous, "open", "connected", null);
    this.#emit(new Event("open"));
  }

  /**
   * Give up on a socket that is not answering: close it without waiting for
   * its closing handshake, and carry on as if it had dropped (code 1006).
   * @param {any} ws
   * @param {string} reason
   */
  #abandon(ws, reason) {
    if (!ws || ws !== this.#ws) return;
    this.#ws = null;
    this.#log("abandoning socket:", reason);
    try {
      ws.close();
    } catch {
      // a socket that cannot even be closed is gone anyway
    }
    this.#dropped(1006, reason.replace("_", " "), false, reason);
  }

  /**
   * A socket is gone: reset what belonged to it, report it, then retry or stop.
   * @param {number} code
   * @param {string} reason
   * @param {boolean} wasClean
   * @param {string|null} why  our own reason (timeouts), else from the code
   */
  #dropped(code, reason, wasClean, why) {
    clearTimeout(this.#connectTimer);
    this.#outbox.stop();
    this.#stopHeartbeat();
    for (const timer of this.#connectionTimers) clearTimeout(timer);
    this.#connectionTimers.clear();
    const uptime = this.#openedAt ? Date.now() - this.#openedAt : 0;
    this.#openedAt = 0;
    this.#pending.clear();
    this.#outbox.requeueAll();
    for (const state of this.#topics.values()) state.disconnected();
    this.#emit(closeEvent(code, reason, wasClean));
    if (this.#stopped) return; // our own close(): already closed
    const [policyReason, retry] = CLOSE_POLICY[code] ?? ["connection_closed", true];
    const stateReason = why ?? policyReason;
    if (!retry) {
      this.#terminate(stateReason, code);
      if (ERROR_CLOSES.has(code)) this.#emit(detailEvent("error", { code, reason: stateReason }));
      return;
    }
    if (uptime >= this.#opts.minUptime) this.#backoff.reset();
    const delay = this.#backoff.schedule(code === 4012, () => this.#connect("retry"));
    this.#setState("reconnecting", stateReason, { code, delay });
  }

  /**
   * Stop for good: no more tries, waiting publishes and subscriptions fail.
   * @param {string} reason
   * @param {number|null} code
   */
  #terminate(reason, code) {
    this.#stopped = true;
    this.#closedReason = reason;
    this.#backoff.cancel();
    clearTimeout(this.#connectTimer);
    this.#outbox.stop();
    this.#stopHeartbeat();
    for (const timer of this.#connectionTimers) clearTimeout(timer);
    this.#connectionTimers.clear();
    const win = globalThis.window;
    if (win && typeof win.removeEventListener === "function") win.removeEventListener("online", this.#onOnline);
    const doc = globalThis.document;
    if (doc && typeof doc.removeEventListener === "function") {
      doc.removeEventListener("visibilitychange", this.#onVisibility);
    }
    const pushes = this.#outbox.takeAll();
    this.#pending.clear();
    for (const push of pushes) {
      push.reset();
      push.reject(closedError(reason, push.topic));
    }
    for (const state of this.#topics.values()) state.close(reason);
    this.#setState("closed", reason, { code });
  }

  /** @param {string} why */
  #wake(why) {
    if (this.#state !== "reconnecting") return;
    this.#log("trying at once:", why);
    this.#connect(why);
  }

  // ---- heartbeat ----------------------------------------------------------

  /** @param {number} ms */
  #startHeartbeat(ms) {
    this.#stopHeartbeat();
    this.#unanswered = 0;
    this.#heartbeatTimer = setInterval(() => {
      if (this.#unanswered >= 2) {
        this.#abandon(this.#ws, "heartbeat_timeout");
        return;
      }
      this.#unanswered += 1;
      const ref = this.#nextRef("h");
      this.#pending.set(ref, { kind: "ping" });
      this.#sendFrame({ type: "ping", ref });
    }, ms);
  }

  #stopHeartbeat() {
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
  }

  // ---- frames -------------------------------------------------------------

  /** @param {MessageEvent} event */
  #handleMessage(event) {
    if (typeof event.data !== "string") return;
    /** @type {Frame} */
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      this.#log("ignoring a frame that is not JSON");
      return;
    }
    if (!frame || typeof frame !== "object" || typeof frame.type !== "string") return;
    switch (frame.type) {
      case "welcome":
        this.#welcome = frame;
        if (this.#opts.heartbeatMs == null && typeof frame.heartbeat === "number" && frame.heartbeat > 0) {
          this.#startHeartbeat(frame.heartbeat * 1000);
        }
        break;
      case "subscribed":
        this.#onSubscribed(frame);
        break;
      case "event":
        this.#onEvent(frame);
        break;
      case "ack":
        this.#onAck(frame);
        break;
      case "presence_state":
      case "presence_diff":
        this.#onPresence(frame);
        break;
      case "pong":
        this.#unanswered = 0;
        this.#pending.delete(frame.ref);
        break;
      case "error":
        this.#onError(frame);
        break;
      default:
        break; // unsubscribed, and types of later versions
    }
    this.#emit(detailEvent("message", frame));
  }

  /** @param {Frame} frame */
  #onSubscribed(frame) {
    this.#pending.delete(frame.ref);
    const state = this.#topics.get(frame.topic);
    if (!state || state.ref !== frame.ref) return; // a reply to an older subscribe
    if (state.confirm(frame)) {
      const offset = state.offset;
      this.#log("resync", state.topic, "at", offset);
      this.#emit(detailEvent("resync", { topic: state.topic, offset }));
    }
    state.ready(frame);
  }

  /** @param {Frame} frame */
  #onEvent(frame) {
    const state = this.#topics.get(frame.topic);
    if (!state) return;
    const offset = frame.offset;
    switch (state.admit(offset)) {
      case "duplicate":
        this.#log("dropping duplicate", state.topic, offset);
        return;
      case "gap":
        // Missed some: ask again from the last one seen; the replay brings them in order.
        this.#log("gap on", state.topic, "after", state.offset, "got", offset);
        if (state.confirmed) this.#sendSubscribe(state);
        return;
      default:
        state.deliver(/** @type {EventFrame} */ (frame));
    }
  }

  /** @param {Frame} frame */
  #onAck(frame) {
    const pending = this.#pending.get(frame.ref);
    if (!pending || pending.kind !== "publish") return;
    this.#pending.delete(frame.ref);
    this.#outbox.settle(pending.push);
    pending.push.resolve({ topic: frame.topic ?? pending.push.topic, offset: frame.offset ?? null });
  }

  /** @param {Frame} frame */
  #onPresence(frame) {
    const state = this.#topics.get(frame.topic);
    if (!state) return;
    state.applyPresence(frame);
  }

  /** @param {Frame} frame */
  #onError(frame) {
    const pending = typeof frame.ref === "string" ? this.#pending.get(frame.ref) : undefined;
    this.#log("error frame", frame.code, frame.message);
    if (!pending) return;
    this.#pending.delete(frame.ref);
    if (pending.kind === "ping") {
      this.#unanswered = 0; // refused (rate limited), but the connection is alive
    } else if (pending.kind === "publish") {
      const push = pending.push;
      // A publish dropped as rate limited, or refused while the server's database
      // or broker is down (nothing stored), goes back in the queue with its id.
      if (RETRIED_CODES.has(frame.code) && this.#outbox.retryLater(push, frame.code, Number(frame.retry_after_ms) || 1000)) return;
      this.#outbox.settle(push);
      push.reject(errorFromFrame(frame));
    } else if (pending.kind === "subscribe") {
      const state = this.#topics.get(pending.topic);
      if (!state || state.ref !== frame.ref) return;
      if (RETRIED_CODES.has(frame.code)) {
        // Subscriptions are the client's to keep: ask again when allowed.
        state.unsent();
        this.#later(Number(frame.retry_after_ms) || 1000, () => {
          if (this.#state === "open" && this.#topics.get(state.topic) === state && state.ref === null) {
            this.#sendSubscribe(state);
          }
        });
        return;
      }
      this.#topics.delete(state.topic);
      state.refuse(errorFromFrame(frame));
    }
  }

  /**
   * Run `fn` after `ms`, unless the connection drops first.
   * @param {number} ms
   * @param {() => void} fn
   */
  #later(ms, fn) {
    const timer = setTimeout(() => {
      this.#connectionTimers.delete(timer);
      fn();
    }, ms);
    this.#connectionTimers.add(timer);
  }

  // ---- sending ------------------------------------------------------------

  /** @param {Topic} state */
  #sendSubscribe(state) {
    const ref = this.#nextRef("s");
    const frame = state.subscribeFrame(ref);
    this.#pending.set(ref, { kind: "subscribe", topic: state.topic });
    this.#sendFrame(frame);
  }

  /** @param {Subscription} sub */
  #leave(sub) {
    const state = this.#topics.get(sub.topic);
    if (!state || !state.remove(sub)) return;
    if (!state.empty) return;
    this.#topics.delete(sub.topic);
    if (state.ref !== null) {
      if (this.#pending.get(state.ref)) this.#pending.delete(state.ref);
      this.#sendFrame({ type: "unsubscribe", topic: sub.topic, ref: this.#nextRef("u") });
    }
  }

  /** @param {Push} push */
  #sendPublish(push) {
    const ref = this.#nextRef("p");
    const frame = push.send(ref);
    this.#pending.set(ref, { kind: "publish", push });
    this.#sendFrame(frame);
    push.startTimeout(this.#opts.publishTimeout, () => {
      this.#pending.delete(ref);
      this.#outbox.settle(push);
    });
  }

  /** @param {Frame} frame */
  #sendFrame(frame) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) return false;
    this.#log("send", frame.type, frame.topic ?? "", frame.ref ?? "");
    ws.send(JSON.stringify(frame));
    return true;
  }

  /** @param {string} prefix */
  #nextRef(prefix) {
    this.#refSeq += 1;
    return `${prefix}${this.#refSeq}`;
  }

  // ---- events -------------------------------------------------------------

  /**
   * @param {State} state
   * @param {string} reason
   * @param {{code?: number|null, delay?: number}} [extra]
   */
  #setState(state, reason, extra = {}) {
    const previous = this.#state;
    this.#state = state;
    if (previous === state && state !== "reconnecting") return;
    this.#announce(previous, state, reason, extra.code ?? null, extra.delay ?? null);
  }

  /**
   * @param {State} previous
   * @param {State} state
   * @param {string} reason
   * @param {number|null} code
   * @param {number|null} [delay]
   */
  #announce(previous, state, reason, code, delay = null) {
    /** @type {StateChange} */
    const detail = { state, previous, reason, retryAt: state === "reconnecting" ? this.#backoff.retryAt : null, delay, code };
    this.#log(`state ${previous} -> ${state} (${reason})`, delay !== null ? `retry in ${delay} ms` : "");
    this.#emit(detailEvent("statechange", detail));
  }

  /** @param {Event} event */
  #emit(event) {
    this.dispatchEvent(event);
    const handler = /** @type {any} */ (this)[`on${event.type}`];
    if (typeof handler === "function") {
      try {
        handler.call(this, event);
      } catch (err) {
        report(err);
      }
    }
  }

  /** @param {...any} args */
  #log(...args) {
    if (this.#opts.debug) console.debug("[realtime]", ...args);
  }
}
