// @ts-check
/**
 * push.js: one publish, from `publish()` until its `ack` or error: its client
 * message id (the page's, or a random one; the same on every send), the ref
 * of its send on this connection, the timeout of that send, and the promise
 * `publish()` returns (shared by the calls that join it).
 * @module realtime/client/push
 */
import { realtimeError } from "./errors.js";
import { frameBytes, randomId } from "./frames.js";

/** @typedef {import("./frames.js").Frame} Frame */
/** @typedef {import("./errors.js").RealtimeError} RealtimeError */
/** @typedef {{topic: string, offset: number|null}} Ack */

/**
 * A publish waiting for its ack.
 */
export class Push {
  /** @type {string|null} ref of the send on this connection, null while queued */
  #ref = null;
  /** @type {any} */
  #timer = null;
  /** times it was sent again after `rate_limited` */
  #retries = 0;
  /** @type {(value: Ack) => void} */
  #resolve = () => {};
  /** @type {(err: RealtimeError) => void} */
  #reject = () => {};

  /**
   * @param {string} topic
   * @param {Record<string, any>} data
   * @param {string|null} [id]  the client message id; null: a random one
   */
  constructor(topic, data, id = null) {
    /** @readonly client message id, the same on every (re)send */
    this.id = id ?? randomId();
    /** @readonly */
    this.topic = topic;
    /** @readonly */
    this.data = data;
    /**
     * @readonly the promise `publish()` returns: the ack's `{topic, offset}`, or the error
     * @type {Promise<Ack>}
     */
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** The ref of its send on this connection, null while queued. */
  get ref() {
    return this.#ref;
  }

  /** How many times it was sent again after `rate_limited`. */
  get retries() {
    return this.#retries;
  }

  /** The size of its frame in bytes, with a ref longer than any the client makes. */
  bytes() {
    return frameBytes({ type: "publish", topic: this.topic, data: this.data, ref: "p".padEnd(20, "0"), id: this.id });
  }

  /**
   * The frame that sends it as `ref` on this connection.
   * @param {string} ref
   * @returns {Frame}
   */
  send(ref) {
    this.#ref = ref;
    return { type: "publish", topic: this.topic, data: this.data, ref, id: this.id };
  }

  /**
   * Wait `ms` for the answer to the send in flight: without one, `onTimeout`
   * runs and the publish rejects with code `timeout`.
   * @param {number} ms
   * @param {() => void} onTimeout
   */
  startTimeout(ms, onTimeout) {
    const ref = this.#ref;
    this.#timer = setTimeout(() => {
      if (this.#ref !== ref) return;
      onTimeout();
      this.#reject(realtimeError("timeout", `No answer to the publish within ${ms} ms`, { topic: this.topic }));
    }, ms);
  }

  /** Not in flight: no ref, no timeout running (answered, or back in the queue). */
  reset() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#ref = null;
  }

  /** Back in the queue after the server dropped it as rate limited. */
  retry() {
    this.#retries += 1;
    this.reset();
  }

  /** @param {Ack} value */
  resolve(value) {
    this.#resolve(value);
  }

  /** @param {RealtimeError} err */
  reject(err) {
    this.#reject(err);
  }
}
