// @ts-check
/**
 * lateacks.js: a bounded memory of the publishes that timed out (their
 * promise rejected with `timeout`) while their frame was on the wire, so that
 * an `ack` arriving after that is still reported (as `publishacked` with
 * `late: true`) and a stored message never looks unsent. Entries are found by
 * the ref of the send (the ack carries it) and by topic and client message id
 * (one report per message, none once a later publish with that id was acked).
 * @module realtime/client/lateacks
 */

/** @typedef {{ref: string, topic: string, id: string}} LateEntry */

/** @param {string} topic @param {string} id */
const keyOf = (topic, id) => `${topic}\n${id}`;

/**
 * The timed-out sends still waiting for a possible late answer, oldest first,
 * at most `capacity` of them (the oldest are forgotten first).
 */
export class LateAcks {
  /** @type {Map<string, LateEntry>} by ref, in insertion order */
  #byRef = new Map();
  /** @type {Map<string, Set<string>>} refs by topic and id */
  #byId = new Map();
  #capacity;

  /** @param {number} capacity  how many timed-out sends to remember at most */
  constructor(capacity) {
    this.#capacity = Math.max(0, Math.floor(Number(capacity) || 0));
  }

  /** How many timed-out sends are remembered. */
  get size() {
    return this.#byRef.size;
  }

  /**
   * Remember the send `ref` of the publish `id` on `topic`, which timed out.
   * @param {string} ref
   * @param {string} topic
   * @param {string} id
   */
  remember(ref, topic, id) {
    const capacity = this.#capacity;
    if (capacity === 0) return;
    this.#byRef.set(ref, { ref, topic, id });
    const key = keyOf(topic, id);
    let refs = this.#byId.get(key);
    if (!refs) this.#byId.set(key, (refs = new Set()));
    refs.add(ref);
    while (this.#byRef.size > capacity) {
      const oldest = this.#byRef.keys().next().value;
      if (oldest === undefined) break;
      this.#delete(/** @type {string} */ (oldest));
    }
  }

  /**
   * The answer to `ref` arrived: its entry (or undefined when it is not
   * remembered), forgetting every send of that message.
   * @param {string} ref
   * @returns {LateEntry|undefined}
   */
  take(ref) {
    const entry = this.#byRef.get(ref);
    if (entry) this.forget(entry.topic, entry.id);
    return entry;
  }

  /**
   * Forget every timed-out send of the publish `id` on `topic` (its outcome
   * is known: another send of it was answered).
   * @param {string} topic
   * @param {string} id
   */
  forget(topic, id) {
    const refs = this.#byId.get(keyOf(topic, id));
    if (!refs) return;
    for (const ref of [...refs]) this.#delete(ref);
  }

  /** Forget everything (the connection the answers would come on is gone). */
  clear() {
    this.#byRef.clear();
    this.#byId.clear();
  }

  /** @param {string} ref */
  #delete(ref) {
    const entry = this.#byRef.get(ref);
    if (!entry) return;
    this.#byRef.delete(ref);
    const key = keyOf(entry.topic, entry.id);
    const refs = this.#byId.get(key);
    if (!refs) return;
    refs.delete(ref);
    if (refs.size === 0) this.#byId.delete(key);
  }
}
