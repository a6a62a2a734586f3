// @ts-check
/**
 * backoff.js: the reconnection timer. Each try waits a random time in
 * [0, min(maxDelay, baseDelay * 2^k)] ("full jitter"), k counting the tries
 * since the last connection that stayed up; after a server restart (4012)
 * the first tries spread over at least `restartJitterMs`.
 * @module realtime/client/backoff
 */

/** The defaults of the backoff's options (also the client's). */
export const BACKOFF_DEFAULTS = Object.freeze({
  baseDelay: 500,
  maxDelay: 30_000,
  random: Math.random,
});

/**
 * The backoff before try `attempt` (0 for the first retry): a random time
 * in [0, min(maxDelay, baseDelay * 2^attempt)] ("full jitter").
 * @param {number} attempt
 * @param {{baseDelay?: number|null, maxDelay?: number|null, random?: (() => number)|null}} [options]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, options = {}) {
  const base = options.baseDelay ?? BACKOFF_DEFAULTS.baseDelay;
  const cap = options.maxDelay ?? BACKOFF_DEFAULTS.maxDelay;
  const random = options.random ?? BACKOFF_DEFAULTS.random;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/**
 * The timer of the next try, and the count of tries behind its delay.
 */
export class Backoff {
  /** @type {{baseDelay: number, maxDelay: number, restartJitterMs: number, random: () => number}} */
  #opts;
  #attempt = 0;
  /** @type {any} */
  #timer = null;
  /** @type {number|null} */
  #retryAt = null;

  /**
   * @param {{baseDelay: number, maxDelay: number, restartJitterMs: number, random: () => number}} options
   */
  constructor(options) {
    this.#opts = options;
  }

  /** Epoch ms of the scheduled try, else null. */
  get retryAt() {
    return this.#retryAt;
  }

  /** Count from the first try again (after a connection that stayed up). */
  reset() {
    this.#attempt = 0;
  }

  /**
   * Schedule the next try: `fn` runs after the backoff delay, returned in ms.
   * @param {boolean} restart  the server closed for a restart (4012)
   * @param {() => void} fn
   */
  schedule(restart, fn) {
    const attempt = this.#attempt++;
    let delay;
    if (restart) {
      const opts = this.#opts;
      const ceiling = Math.max(opts.restartJitterMs, Math.min(opts.maxDelay, opts.baseDelay * 2 ** attempt));
      delay = Math.floor(opts.random() * ceiling);
    } else {
      delay = backoffDelay(attempt, this.#opts);
    }
    this.#retryAt = Date.now() + delay;
    this.#timer = setTimeout(fn, delay);
    return delay;
  }

  /** Drop the scheduled try, if any. */
  cancel() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#retryAt = null;
  }
}
