// @ts-check
/**
 * subscription.js: one subscribed topic and the subscriptions to it.
 *
 * A `Topic` is what the client knows of one topic (shared by the
 * subscriptions made to it): its last offset, the subscribe sent on this
 * connection, the first `subscribed` frame, its presence. A `Subscription` is
 * what `subscribe()` returns: one handler on a topic, with its `ready`
 * promise. The client routes a topic's frames to its Topic, which changes its
 * Subscriptions only through their methods.
 * @module realtime/client/subscription
 */
import { closedError, realtimeError, report } from "./errors.js";

/** @typedef {import("./frames.js").Frame} Frame */
/** @typedef {import("./frames.js").EventFrame} EventFrame */
/** @typedef {import("./frames.js").PresenceUser} PresenceUser */
/** @typedef {import("./errors.js").RealtimeError} RealtimeError */
/** @typedef {(event: EventFrame) => void} EventHandler */
/** @typedef {(users: PresenceUser[], frame: Frame) => void} PresenceHandler */

/**
 * What the client knows of one subscribed topic (shared by the subscriptions
 * made to it).
 */
export class Topic {
  /** @type {number|null} last offset seen (the `since` of the next subscribe) */
  #offset;
  /** @type {string|null} ref of the subscribe sent on this connection, null when none was */
  #ref = null;
  /** its `subscribed` came on this connection */
  #confirmed = false;
  /** @type {Frame|null} the first `subscribed` frame */
  #frame = null;
  /** @type {Set<Subscription>} */
  #subs = new Set();
  /** @type {Map<string, PresenceUser>} */
  #presence = new Map();

  /**
   * @param {string} topic
   * @param {number|null|undefined} since  the offset to replay from, if any
   * @param {boolean} [presence]  false: subscribe without counting in the topic's presence
   */
  constructor(topic, since, presence = true) {
    /** @readonly */
    this.topic = topic;
    /** @readonly */
    this.presence = presence !== false;
    this.#offset = typeof since === "number" && Number.isFinite(since) ? since : null;
  }

  /** The last offset seen (the `since` of the next subscribe), or null. */
  get offset() {
    return this.#offset;
  }

  /** The ref of the subscribe sent on this connection, null when none was. */
  get ref() {
    return this.#ref;
  }

  /** Whether its `subscribed` came on this connection. */
  get confirmed() {
    return this.#confirmed;
  }

  /** The users present, for topics with presence. */
  get users() {
    return Array.from(this.#presence.values());
  }

  /** No subscription uses the topic any more. */
  get empty() {
    return this.#subs.size === 0;
  }

  /**
   * A new subscription to the topic; ready at once if the topic already is.
   * @param {EventHandler} handler
   * @param {PresenceHandler | undefined} onPresence
   * @param {(sub: Subscription) => void} leave  called by `unsubscribe()`
   */
  join(handler, onPresence, leave) {
    const sub = new Subscription(this.topic, handler, onPresence, leave, this);
    this.#subs.add(sub);
    if (this.#frame) sub.settle(this.#frame);
    return sub;
  }

  /**
   * Take `sub` out of the topic: false if it was not in it.
   * @param {Subscription} sub
   */
  remove(sub) {
    return this.#subs.delete(sub);
  }

  /**
   * The subscribe frame to send on this connection as `ref` (with `since`,
   * the last offset seen, if any).
   * @param {string} ref
   * @returns {Frame}
   */
  subscribeFrame(ref) {
    this.#ref = ref;
    this.#confirmed = false;
    /** @type {Frame} */
    const frame = { type: "subscribe", topic: this.topic, ref };
    if (this.#offset !== null) frame.since = this.#offset;
    if (!this.presence) frame.presence = false;
    return frame;
  }

  /** The subscribe sent was dropped (rate limited): none is in flight. */
  unsent() {
    this.#ref = null;
  }

  /**
   * The `subscribed` answer to the subscribe in flight. Returns true when
   * events were lost (no longer retained, or the server's history went
   * backwards): the topic then goes on from the frame's offset.
   * @param {Frame} frame
   */
  confirm(frame) {
    this.#confirmed = true;
    const offset = typeof frame.offset === "number" ? frame.offset : null;
    const wentBack = offset !== null && this.#offset !== null && offset < this.#offset;
    if (frame.recovered === false || wentBack) {
      this.#offset = offset;
      return true;
    }
    if (this.#offset === null) {
      this.#offset = offset; // the baseline a reconnect recovers from
    }
    return false;
  }

  /**
   * Settle the subscriptions' `ready` with a `subscribed` frame (the first
   * one is kept for later subscriptions).
   * @param {Frame} frame
   */
  ready(frame) {
    if (!this.#frame) this.#frame = frame;
    for (const sub of this.#subs) sub.settle(frame);
  }

  /**
   * Where an `event` frame's offset stands: `duplicate` (seen already), `gap`
   * (some before it were missed; the offset stays) or `next` (taken as the
   * last offset; also an event without offset).
   * @param {unknown} offset
   * @returns {"duplicate"|"gap"|"next"}
   */
  admit(offset) {
    if (typeof offset === "number") {
      if (this.#offset !== null) {
        if (offset <= this.#offset) return "duplicate";
        if (offset > this.#offset + 1) return "gap";
      }
      this.#offset = offset;
    }
    return "next";
  }

  /**
   * Hand an admitted `event` frame to each subscription's handler.
   * @param {EventFrame} frame
   */
  deliver(frame) {
    for (const sub of Array.from(this.#subs)) sub.deliver(frame);
  }

  /**
   * Apply a `presence_state` or `presence_diff` frame, then give each
   * subscription the whole current list of users.
   * @param {Frame} frame
   */
  applyPresence(frame) {
    /** @param {any} user */
    const key = (user) => String(user && user.id);
    if (frame.type === "presence_state") {
      this.#presence.clear();
      for (const user of frame.users || []) this.#presence.set(key(user), user);
    } else {
      for (const user of frame.leaves || []) this.#presence.delete(key(user));
      for (const user of frame.joins || []) this.#presence.set(key(user), user);
    }
    const users = this.users;
    for (const sub of Array.from(this.#subs)) sub.presenceChanged(users, frame);
  }

  /** The socket is gone: nothing is in flight or confirmed, nobody is known present. */
  disconnected() {
    this.#ref = null;
    this.#confirmed = false;
    this.#presence.clear();
  }

  /**
   * The server refused the topic: every subscription to it is dropped.
   * @param {RealtimeError} err
   */
  refuse(err) {
    for (const sub of this.#subs) sub.drop(err, this.#offset);
  }

  /**
   * The client closed for good: every subscription's `ready` fails with code
   * `closed` (the subscriptions stay `active`).
   * @param {string} reason  the `closed` state's reason
   */
  close(reason) {
    for (const sub of this.#subs) sub.fail(closedError(reason, this.topic));
  }
}

/**
 * What `subscribe()` returns.
 *
 * - `topic`: the topic.
 * - `ready`: settles with the `subscribed` frame, or rejects with an Error
 *   carrying the error frame's `code` (`forbidden`, `not_found`, ...) or
 *   `closed`/`unsubscribed`. It is marked handled, so an unawaited failure is
 *   no unhandled rejection (the error frame also arrives as a `message` event).
 * - `offset`: the last offset seen on the topic (null before any).
 * - `presence`: the users present (topics with presence), kept up to date.
 * - `active`: false after `unsubscribe()` or a refused subscription.
 * - `unsubscribe()`: stop receiving; the last subscription of a topic leaves it.
 *
 * The other methods are for its `Topic` and the client.
 */
export class Subscription {
  #active = true;
  /** @type {Topic|null} the topic while this subscription is in it */
  #topic;
  /** @type {EventHandler} */
  #handler;
  /** @type {PresenceHandler | undefined} */
  #onPresence;
  /** @type {(sub: Subscription) => void} */
  #leave;
  #settled = false;
  /** @type {(frame: Frame) => void} */
  #resolve = () => {};
  /** @type {(err: RealtimeError) => void} */
  #reject = () => {};
  /** @type {number|null} last offset seen while this subscription was active */
  #lastOffset = null;

  /**
   * @param {string} topic
   * @param {EventHandler} handler
   * @param {PresenceHandler | undefined} onPresence
   * @param {(sub: Subscription) => void} leave
   * @param {Topic|null} joined  the topic it is in (null: never joined)
   */
  constructor(topic, handler, onPresence, leave, joined) {
    /** @readonly */
    this.topic = topic;
    this.#handler = handler;
    this.#onPresence = onPresence;
    this.#leave = leave;
    this.#topic = joined;
    /** @type {Promise<Frame>} */
    this.ready = new Promise((resolve, reject) => {
      this.#resolve = (frame) => {
        if (!this.#settled) (this.#settled = true), resolve(frame);
      };
      this.#reject = (err) => {
        if (!this.#settled) (this.#settled = true), reject(err);
      };
    });
    this.ready.catch(() => {});
  }

  /** False after `unsubscribe()` or a refused subscription. */
  get active() {
    return this.#active;
  }

  /** The last offset seen on the topic (null before any). */
  get offset() {
    return this.#topic ? this.#topic.offset : this.#lastOffset;
  }

  /** The users present on the topic, for topics with presence. */
  get presence() {
    return this.#topic ? this.#topic.users : [];
  }

  /** Stop receiving this topic's events (the last subscription leaves the topic). */
  unsubscribe() {
    if (!this.#active) return;
    this.#lastOffset = this.offset;
    this.#active = false;
    this.#leave(this);
    this.#topic = null;
    this.#reject(realtimeError("unsubscribed", `Unsubscribed from ${this.topic}`, { topic: this.topic }));
  }

  // ---- for the Topic and the client ----------------------------------------

  /**
   * Resolve `ready` (once).
   * @param {Frame} frame
   */
  settle(frame) {
    this.#resolve(frame);
  }

  /**
   * Reject `ready` (unless it settled already); the subscription stays as it is.
   * @param {RealtimeError} err
   */
  fail(err) {
    this.#reject(err);
  }

  /**
   * Refused: out of its topic for good, `offset` keeps `lastOffset`, and
   * `ready` rejects with `err`.
   * @param {RealtimeError} err
   * @param {number|null} lastOffset
   */
  drop(err, lastOffset) {
    this.#lastOffset = lastOffset;
    this.#topic = null;
    this.#active = false;
    this.#reject(err);
  }

  /**
   * Call the handler with an event; what it throws is reported, not raised.
   * @param {EventFrame} frame
   */
  deliver(frame) {
    try {
      this.#handler(frame);
    } catch (err) {
      report(err);
    }
  }

  /**
   * Call `onPresence`, if given, with the users present now.
   * @param {PresenceUser[]} users
   * @param {Frame} frame
   */
  presenceChanged(users, frame) {
    if (!this.#onPresence) return;
    try {
      this.#onPresence(users, frame);
    } catch (err) {
      report(err);
    }
  }
}
