// @ts-check
/**
 * errors.js: the Errors the client rejects with (its own, and those of the
 * server's `error` frames), and how an exception thrown by a page's callback
 * is reported without breaking the client.
 * @module realtime/client/errors
 */

/** @typedef {import("./frames.js").Frame} Frame */

/**
 * An Error from the client or from an `error` frame.
 * @typedef {Error & {code: string, topic?: string, retryAfterMs?: number, reason?: string, frame?: Frame}} RealtimeError
 */

/**
 * @param {string} code
 * @param {string} message
 * @param {Partial<RealtimeError>} [extra]
 * @returns {RealtimeError}
 */
export function realtimeError(code, message, extra = {}) {
  const err = /** @type {RealtimeError} */ (Object.assign(new Error(message), { code }, extra));
  err.name = "RealtimeError";
  return err;
}

/**
 * The rejection of what waited when the client closed for good.
 * @param {string} reason  the `closed` state's reason
 * @param {string} topic
 */
export function closedError(reason, topic) {
  return realtimeError("closed", `The connection closed (${reason})`, { topic, reason });
}

/** @param {Frame} frame */
export function errorFromFrame(frame) {
  return realtimeError(String(frame.code || "error"), String(frame.message || frame.code || "error"), {
    topic: frame.topic,
    retryAfterMs: frame.retry_after_ms,
    frame,
  });
}

/** @param {unknown} err */
export function report(err) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(err);
  else console.error(err);
}
