// @ts-check
/**
 * outbox.js: the publishes not yet acked, in call order (queued while
 * offline, waiting for their turn, or in flight), and the pacing that keeps
 * their sending under the server's rate limit.
 * @module realtime/client/outbox
 */

/** @typedef {import("./push.js").Push} Push */

/**
 * How many times a publish is sent again, by the refusal's code, before it
 * rejects: dropped by the rate limit, or refused while the server's database
 * or broker is down (about half a minute of outage at the usual 1 s hint).
 */
const MAX_RETRIES = { rate_limited: 5, unavailable: 30 };

/**
 * The publishes waiting for their ack, and a token bucket (`publishBurst`
 * tokens, refilled at `publishRate` a second) for sending them.
 */
export class Outbox {
  /** @type {Push[]} publishes not yet acked, in order */
  #pushes = [];
  /** @type {any} */
  #timer = null;
  #tokens = 0;
  #tokensAt = 0;
  #blockedUntil = 0;
  /** @type {{maxQueue: number, publishBurst: number, publishRate: number}} */
  #opts;
  /** @type {() => boolean} */
  #canSend;
  /** @type {(push: Push) => void} */
  #send;

  /**
   * @param {{maxQueue: number, publishBurst: number, publishRate: number}} options
   * @param {() => boolean} canSend  whether the connection is open
   * @param {(push: Push) => void} send  send one publish on it
   */
  constructor(options, canSend, send) {
    this.#opts = options;
    this.#canSend = canSend;
    this.#send = send;
  }

  /** How many publishes wait for their ack. */
  get size() {
    return this.#pushes.length;
  }

  /** Whether `maxQueue` publishes wait already (the limit while not connected). */
  get full() {
    return this.#pushes.length >= this.#opts.maxQueue;
  }

  /**
   * The publish of client message id `id` on `topic` waiting for its ack, if any.
   * @param {string} topic
   * @param {string} id
   * @returns {Push|undefined}
   */
  find(topic, id) {
    return this.#pushes.find((push) => push.id === id && push.topic === topic);
  }

  /** @param {Push} push */
  add(push) {
    this.#pushes.push(push);
  }

  /** A new connection: a full burst, and no wait asked by the server. */
  refill() {
    this.#tokens = this.#opts.publishBurst;
    this.#tokensAt = Date.now();
    this.#blockedUntil = 0;
  }

  /**
   * Send the publishes not sent on this connection, in order, as fast as the
   * client's own rate limit (publishBurst, publishRate) and the server's last
   * `retry_after_ms` allow; the rest wait (without a timeout) for the next turn.
   */
  pump() {
    clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#canSend()) return;
    for (const push of this.#pushes) {
      if (push.ref !== null) continue;
      const wait = this.#takeToken();
      if (wait > 0) {
        this.#timer = setTimeout(() => this.pump(), wait);
        return;
      }
      this.#send(push);
    }
  }

  /** Take a send token: 0 when one was taken, else the ms until one is due. */
  #takeToken() {
    const now = Date.now();
    if (now < this.#blockedUntil) return this.#blockedUntil - now;
    const { publishBurst, publishRate } = this.#opts;
    this.#tokens = Math.min(publishBurst, this.#tokens + ((now - this.#tokensAt) * publishRate) / 1000);
    this.#tokensAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / publishRate));
  }

  /**
   * The server dropped `push` for now (`rate_limited`, `unavailable`): false
   * when it was sent again too often already (it should then reject), else it
   * goes back in the queue, to be sent again with the same id.
   * @param {Push} push
   * @param {string} code  the refusal's code
   * @param {number} retryAfterMs  the server's `retry_after_ms`
   */
  retryLater(push, code, retryAfterMs) {
    if (push.retries >= (MAX_RETRIES[code] ?? 0)) return false;
    // Dropped, not refused: send it again (same id) when the server allows.
    // Its timeout starts again when it is sent again.
    push.retry();
    this.#tokens = 0;
    this.#blockedUntil = Date.now() + retryAfterMs;
    this.pump();
    return true;
  }

  /**
   * Take an answered (or timed out) publish out of the outbox.
   * @param {Push} push
   */
  settle(push) {
    push.reset();
    const index = this.#pushes.indexOf(push);
    if (index !== -1) this.#pushes.splice(index, 1);
  }

  /** Stop sending (the connection is gone, or the client closed). */
  stop() {
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** The connection dropped: every publish in flight goes back in the queue. */
  requeueAll() {
    for (const push of this.#pushes) push.reset();
  }

  /** Empty the outbox, returning what it held (the client closed for good). */
  takeAll() {
    const pushes = this.#pushes;
    this.#pushes = [];
    return pushes;
  }
}
