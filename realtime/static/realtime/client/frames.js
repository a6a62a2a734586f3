// @ts-check
/**
 * frames.js: the shapes of the protocol's frames, the size limit of one
 * frame, and the random client message ids that publishes carry.
 * @module realtime/client/frames
 */

/**
 * A protocol frame: one JSON object with a string `type`.
 * @typedef {{type: string, [field: string]: any}} Frame
 */

/**
 * An `event` frame, as a subscription handler receives it.
 * @typedef {object} EventFrame
 * @property {"event"} type
 * @property {string} topic
 * @property {number|null} offset  null on topics without history
 * @property {string} ts            ISO 8601 UTC
 * @property {Record<string, any>} data
 */

/** @typedef {{id: number|string, username: string}} PresenceUser */

export const MAX_FRAME_BYTES = 65_536;

const utf8 = new TextEncoder();

/**
 * The size of `frame` on the wire: its JSON in UTF-8 bytes.
 * @param {Frame} frame
 */
export function frameBytes(frame) {
  return utf8.encode(JSON.stringify(frame)).length;
}

/** A client message id: 32 hex characters, random. */
export function randomId() {
  const bytes = new Uint8Array(16);
  if (globalThis.crypto && typeof globalThis.crypto.getRandomValues === "function") {
    globalThis.crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
