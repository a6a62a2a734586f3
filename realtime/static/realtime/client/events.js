// @ts-check
/**
 * events.js: the DOM events the client fires that carry data, built with a
 * fallback where `CustomEvent` or `CloseEvent` does not exist (Node 20 has
 * no `CloseEvent`).
 * @module realtime/client/events
 */

/**
 * An event with a `detail`, where `CustomEvent` exists or not.
 * @param {string} type
 * @param {any} detail
 */
export function detailEvent(type, detail) {
  if (typeof CustomEvent === "function") return new CustomEvent(type, { detail });
  const event = new Event(type);
  Object.defineProperty(event, "detail", { value: detail });
  return event;
}

/**
 * A `close` event for the client: a real `CloseEvent` where there is one.
 * @param {number} code
 * @param {string} reason
 * @param {boolean} wasClean
 */
export function closeEvent(code, reason, wasClean) {
  if (typeof CloseEvent === "function") return new CloseEvent("close", { code, reason, wasClean });
  const event = new Event("close");
  Object.defineProperties(event, {
    code: { value: code, enumerable: true },
    reason: { value: reason, enumerable: true },
    wasClean: { value: wasClean, enumerable: true },
  });
  return event;
}
