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
 * const { offset } = await client.publish("room:general", { text: "hello" }, {
 *   id: draft.id,                                 // optional: a "Retry" with the same id never stores twice
 * });
 * client.addEventListener("publishacked", (e) => markSent(e.detail.id, e.detail.offset)); // late acks too
 * retryButton.onclick = () => client.reconnectNow(); // while `reconnecting`: try at once
 * ```
 *
 * Shaped like `WebSocket` (and like reconnecting-websocket): it extends
 * `EventTarget`, fires `open`, `message`, `error` and `close` (also as
 * `onopen`/`onmessage`/`onerror`/`onclose`), has `send()`, `close()` and
 * `readyState`. On top of that it keeps the connection alive (heartbeat,
 * reconnection with backoff), resubscribes and recovers by offset, and
 * delivers publishes exactly once (client message ids, resent after a lost ack).
 * It follows the browser's network state: while the browser reports offline
 * (`navigator.onLine === false`, or an `offline` event) it makes no attempt
 * and stays `reconnecting` (cause `offline`); an `offline` event drops the
 * socket at once; `online`, or the tab becoming visible while `reconnecting`,
 * tries at once.
 *
 * Events fired on the client:
 * - `open`: a socket opened (every reconnect too).
 * - `message`: every server frame, parsed, as `event.detail` (`event`, `ack`,
 *   `error`, `presence_state`, `presence_diff`, `welcome`, ... all of them).
 * - `error`: a socket error, or a close that the client will not recover from
 *   because it was our fault (4003 binary frame, 4009 frame too large).
 * - `close`: a socket closed (every drop, not only the last one), with `code`,
 *   `reason` and `wasClean` of that socket. A dead socket that the client
 *   abandons (heartbeat or connect timeout, the browser going offline)
 *   reports code 1006.
 * - `statechange`: `detail: {state, previous, reason, retryAt, delay, code, cause}`.
 *   `retryAt` (epoch ms) and `delay` (ms) are set while `reconnecting` with a
 *   try scheduled, else null; `code` is the close code behind the change, or null.
 *   `cause` (set on `reconnecting` and `closed`, null on `connecting` and `open`):
 *   `offline` (the browser reports no network: no tries until it reports one),
 *   `unreachable` (the server could not be reached, or the link died: connect
 *   failure or timeout, 1006, heartbeat timeout), `closed` (the server closed
 *   the socket; `code` says with which) or `client` (the page called `close()`).
 * - `publishacked`: `detail: {topic, offset, id, late}` for every `ack` of a
 *   publish: `late: false` when its promise resolved with it, `late: true`
 *   when the promise had already rejected with `timeout` (the message was
 *   stored after all: show it as sent). One listener covers both.
 * - `resync`: `detail: {topic, offset}`: events of a subscribed topic were lost
 *   (no longer retained, or the server's history went backwards): reload the
 *   topic's state over REST; live events continue after `offset`.
 *
 * `state` reasons (strings a page can map to words):
 * - `connecting`: `initial`, `retry`, `online`, `visible`, `reconnect_now`
 * - `open`: `connected`
 * - `reconnecting` (will retry): `server_restart` (4012), `connection_lost` (1006),
 *   `server_error` (1011), `too_slow` (4008), `rate_limited` (4429),
 *   `heartbeat_timeout`, `connect_timeout`, `connection_closed` (any other code),
 *   `offline` (the browser went offline, or was offline when a try was due; a
 *   socket that drops while the browser reports offline keeps its own reason,
 *   with cause `offline`)
 * - `closed` (stays closed): `client_closed` (our own `close()`), `normal_closure`
 *   (1000 from the server), `disconnected_by_admin` (4000), `binary_frame` (4003),
 *   `frame_too_large` (4009), `signed_out` (4401), `too_many_connections` (4029)
 *
 * This module holds the socket, the heartbeat and the state machine; the
 * rest is delegated to `client/`: `backoff.js` (the reconnection timer),
 * `subscription.js` (one topic's state and the subscriptions to it),
 * `push.js` (one publish waiting for its ack), `outbox.js` (the publishes
 * not yet acked and their pacing), `lateacks.js` (the publishes that timed
 * out, for a late ack), `network.js` (the browser's network state and the
 * tab's visibility), `frames.js`, `errors.js` and `events.js`.
 *
 * Methods beyond `WebSocket`'s: `subscribe(topic, handler, {since, onPresence})`,
 * `publish(topic, data, {id})`, `reconnectNow()`; see each.
 *
 * @module realtime
 */
import { BACKOFF_DEFAULTS, Backoff, backoffDelay } from "./client/backoff.js";
import { closedError, errorFromFrame, realtimeError, report } from "./client/errors.js";
import { closeEvent, detailEvent } from "./client/events.js";
import { MAX_FRAME_BYTES } from "./client/frames.js";
import { LateAcks } from "./client/lateacks.js";
import { Network } from "./client/network.js";
import { Outbox } from "./client/outbox.js";
import { Push } from "./client/push.js";
import { Subscription, Topic } from "./client/subscription.js";

/** @typedef {import("./client/frames.js").Frame} Frame */
/** @typedef {import("./client/frames.js").EventFrame} EventFrame */
/** @typedef {import("./client/frames.js").PresenceUser} PresenceUser */
/** @typedef {import("./client/errors.js").RealtimeError} RealtimeError */
/** @typedef {import("./client/network.js").Environment} Environment */

/** @typedef {"connecting"|"open"|"reconnecting"|"closed"} State */
/** @typedef {"offline"|"unreachable"|"closed"|"client"} Cause */

/**
 * @typedef {object} StateChange
 * @property {State} state
 * @property {State} previous
 * @property {string} reason     see the list of reasons above
 * @property {number|null} retryAt  epoch ms of the next try, while reconnecting
 * @property {number|null} delay    ms until the next try, while reconnecting
 * @property {number|null} code     the close code behind the change, if any
 * @property {Cause|null} cause     why not open: set when `reconnecting` or `closed`, else null
 */

/**
 * The `detail` of `publishacked`.
 * @typedef {object} PublishAck
 * @property {string} topic
 * @property {number|null} offset
 * @property {string} id       the publish's client message id
 * @property {boolean} late    true when its promise had already rejected with `timeout`
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
 * @property {number} [lateAckMemory]  publishes that timed out remembered for a late ack (100)
 * @property {() => number} [random]     source of jitter in [0, 1) (Math.random)
 * @property {boolean} [debug]           log state changes and frames with console.debug (false)
 * @property {any} [WebSocket]           WebSocket constructor (the global `WebSocket`)
 * @property {Environment|null} [environment]  where `online`/`offline` (its `addEventListener`),
 *                                       `navigator.onLine` and the `document`'s `visibilitychange`
 *                                       come from; null: the browser's globals (null)
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
  lateAckMemory: 100,
  random: BACKOFF_DEFAULTS.random,
  debug: false,
  WebSocket: null,
  environment: null,
});

const MAX_ID_LENGTH = 64;

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
  /** @type {Cause|null} the cause of the last state change */
  #cause = null;
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
  /** @type {LateAcks} publishes that timed out on this connection, for a late ack */
  #lateAcks;
  /** @type {Network} the browser's network state and the tab's visibility */
  #network;
  /** @type {Set<any>} timers that die with the connection */
  #connectionTimers = new Set();

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
    this.#lateAcks = new LateAcks(this.#opts.lateAckMemory);
    this.#network = new Network(this.#opts.environment, {
      offline: () => this.#wentOffline(),
      online: () => this.#wake("online"),
      visible: () => this.#wake("visible"),
    });
    /** @readonly */
    this.url = resolveUrl(url);
    if (!(this.#opts.WebSocket || globalThis.WebSocket)) {
      throw new Error("RealtimeClient: no WebSocket here; pass options.WebSocket");
    }
    this.#connect("initial"); // while the browser reports offline: waits for `online`
    this.#network.start();
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
   * @param {{since?: number|null, presence?: boolean, onPresence?: (users: PresenceUser[], frame: Frame) => void}} [options]
   *   `presence: false`: this page does not count the user as present on the topic
   *   (a rooms list that only counts unread messages); it gets no presence frames.
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
    state = new Topic(topic, options.since, options.presence);
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
   *
   * Every publish carries a client message id: `options.id` (a string of 1
   * to 64 characters; anything else throws a TypeError), or a random one.
   * Publishing again with the same `id` on the same topic (a page's "Retry")
   * never stores a second copy: while a publish with that id waits in the
   * client, the call joins it (it returns the same promise, no second frame
   * is sent); once that one settled, it is sent again with the same id and
   * the server answers with the first one's offset. Every ack also fires
   * `publishacked` (`detail: {topic, offset, id, late}`), including the ack
   * of a publish that had already rejected with `timeout` (`late: true`).
   * @param {string} topic
   * @param {Record<string, any>} data
   * @param {{id?: string|null}} [options]
   * @returns {Promise<{topic: string, offset: number|null}>}
   */
  publish(topic, data, options = {}) {
    const id = options?.id ?? null;
    if (id !== null && (typeof id !== "string" || id.length === 0 || Array.from(id).length > MAX_ID_LENGTH)) {
      throw new TypeError(`publish: id must be a string of 1 to ${MAX_ID_LENGTH} characters`);
    }
    if (this.#stopped) {
      return Promise.reject(realtimeError("closed", "The client is closed", { topic, reason: this.#closedReason }));
    }
    const joined = id === null ? undefined : this.#outbox.find(topic, id);
    if (joined) {
      this.#log("joining the pending publish", id, "on", topic);
      return joined.promise;
    }
    const push = new Push(topic, data, id);
    const size = push.bytes();
    if (size > MAX_FRAME_BYTES) {
      return Promise.reject(realtimeError("too_large", `The frame would be ${size} bytes, more than ${MAX_FRAME_BYTES}`, { topic }));
    }
    if (this.#state === "open") {
      this.#outbox.add(push);
      this.#outbox.pump();
      return push.promise;
    }
    if (this.#outbox.full) {
      return Promise.reject(realtimeError("queue_full", `Offline queue is full (${this.#opts.maxQueue} publishes waiting)`, { topic }));
    }
    this.#outbox.add(push);
    this.#log("queued publish", push.id, "on", topic);
    return push.promise;
  }

  /**
   * While `reconnecting`, try at once (the next try of the backoff is
   * dropped; if this one fails, the backoff goes on). Tries even while the
   * browser reports offline: the person asked, and `navigator.onLine` can be
   * wrong (a server on this machine). Does nothing in any other state.
   */
  reconnectNow() {
    if (this.#stopped || this.#state !== "reconnecting") return;
    this.#log("trying at once: reconnectNow()");
    this.#connect("reconnect_now", true);
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
    this.#terminate("client_closed", null, "client");
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

  /**
   * Try to connect now, unless the browser reports offline.
   * @param {string} reason  the `connecting` state's reason
   * @param {boolean} [evenOffline]  try even while the browser reports offline
   */
  #connect(reason, evenOffline = false) {
    this.#backoff.cancel();
    if (!evenOffline && this.#network.offline) {
      this.#waitForNetwork("offline", null);
      return;
    }
    const WebSocketImpl = this.#opts.WebSocket || globalThis.WebSocket;
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
    this.#lateAcks.clear(); // no answer can come on a socket that is gone
    this.#outbox.requeueAll();
    for (const state of this.#topics.values()) state.disconnected();
    this.#emit(closeEvent(code, reason, wasClean));
    if (this.#stopped) return; // our own close(): already closed
    const [policyReason, retry] = CLOSE_POLICY[code] ?? ["connection_closed", true];
    const stateReason = why ?? policyReason;
    if (!retry) {
      this.#terminate(stateReason, code, "closed");
      if (ERROR_CLOSES.has(code)) this.#emit(detailEvent("error", { code, reason: stateReason }));
      return;
    }
    if (uptime >= this.#opts.minUptime) this.#backoff.reset();
    if (this.#network.offline) {
      this.#waitForNetwork(stateReason, code);
      return;
    }
    // Our own verdicts (timeouts, a socket that could not be made) and 1006/1015
    // mean the server was not reached or the link died; any other code is the server's.
    const cause = why !== null || code === 1006 || code === 1015 ? "unreachable" : "closed";
    const delay = this.#backoff.schedule(code === 4012, () => this.#connect("retry"));
    this.#setState("reconnecting", stateReason, { code, delay, cause });
  }

  /**
   * The browser reports no network: no tries until it reports one again.
   * @param {string} reason
   * @param {number|null} code
   */
  #waitForNetwork(reason, code) {
    this.#backoff.cancel();
    if (this.#state === "reconnecting" && this.#cause === "offline") return; // already waiting
    this.#log("waiting for the network");
    this.#setState("reconnecting", reason, { code, cause: "offline" });
  }

  /** The browser went offline: drop the socket at once (it cannot work) and wait for the network. */
  #wentOffline() {
    if (this.#stopped) return;
    if (this.#ws) this.#abandon(this.#ws, "offline");
    else if (this.#state === "reconnecting") this.#waitForNetwork("offline", null);
  }

  /**
   * Stop for good: no more tries, waiting publishes and subscriptions fail.
   * @param {string} reason
   * @param {number|null} code
   * @param {Cause} cause  `closed` (by the server) or `client` (our own `close()`)
   */
  #terminate(reason, code, cause) {
    this.#stopped = true;
    this.#closedReason = reason;
    this.#backoff.cancel();
    clearTimeout(this.#connectTimer);
    this.#outbox.stop();
    this.#stopHeartbeat();
    for (const timer of this.#connectionTimers) clearTimeout(timer);
    this.#connectionTimers.clear();
    this.#network.stop();
    this.#lateAcks.clear();
    const pushes = this.#outbox.takeAll();
    this.#pending.clear();
    for (const push of pushes) {
      push.reset();
      push.reject(closedError(reason, push.topic));
    }
    for (const state of this.#topics.values()) state.close(reason);
    this.#setState("closed", reason, { code, cause });
  }

  /**
   * The browser is online again, or the tab became visible: while
   * `reconnecting`, try at once (unless the browser still reports offline).
   * Coming online starts the backoff over: the network changed.
   * @param {"online"|"visible"} why
   */
  #wake(why) {
    if (this.#stopped || this.#state !== "reconnecting") return;
    if (why === "online") {
      if (this.#network.offline) return;
      this.#backoff.reset();
    }
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
    if (pending && pending.kind === "publish") {
      const push = pending.push;
      this.#pending.delete(frame.ref);
      this.#outbox.settle(push);
      this.#lateAcks.forget(push.topic, push.id); // answered now: no late report of an earlier send
      const ack = { topic: frame.topic ?? push.topic, offset: frame.offset ?? null };
      push.resolve(ack);
      this.#emit(detailEvent("publishacked", /** @type {PublishAck} */ ({ ...ack, id: push.id, late: false })));
      return;
    }
    // The ack of a publish that already rejected with `timeout`: it was stored after all.
    const late = typeof frame.ref === "string" && !pending ? this.#lateAcks.take(frame.ref) : undefined;
    if (!late) return;
    this.#log("late ack of", late.id, "on", late.topic);
    /** @type {PublishAck} */
    const detail = { topic: frame.topic ?? late.topic, offset: frame.offset ?? null, id: late.id, late: true };
    this.#emit(detailEvent("publishacked", detail));
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
    if (!pending) {
      // A late refusal of a publish that timed out: nothing was stored, nothing to report.
      if (typeof frame.ref === "string") this.#lateAcks.take(frame.ref);
      return;
    }
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
      this.#lateAcks.remember(ref, push.topic, push.id); // its ack may still come
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
   * @param {{code?: number|null, delay?: number, cause?: Cause|null}} [extra]
   */
  #setState(state, reason, extra = {}) {
    const previous = this.#state;
    this.#state = state;
    if (previous === state && state !== "reconnecting") return;
    this.#announce(previous, state, reason, extra.code ?? null, extra.delay ?? null, extra.cause ?? null);
  }

  /**
   * @param {State} previous
   * @param {State} state
   * @param {string} reason
   * @param {number|null} code
   * @param {number|null} [delay]
   * @param {Cause|null} [cause]
   */
  #announce(previous, state, reason, code, delay = null, cause = null) {
    this.#cause = cause;
    /** @type {StateChange} */
    const detail = { state, previous, reason, retryAt: state === "reconnecting" ? this.#backoff.retryAt : null, delay, code, cause };
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
