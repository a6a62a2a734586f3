// @ts-check
/**
 * page.js: what every page's script shares. One `RealtimeClient` per page
 * (`client`), shared by all widgets (notifications bell, announcements, the
 * room, the dashboard); helpers to read server data (`json_script`), call the
 * REST API with the CSRF header, and keep connection badges in words.
 *
 * Imported by the pages' entry modules (site.js, room.js, dashboard.js), never
 * loaded with its own <script> tag, so that the page has exactly one instance.
 * @module page
 */
import { RealtimeClient } from "./realtime.js";

/** The page's one connection (ws: or wss: from `location`, session cookie auth). */
export const client = new RealtimeClient();

/**
 * The value that `{{ value|json_script:"id" }}` put in the page, or `fallback`.
 * @param {string} id
 * @param {any} [fallback]
 */
export function readJson(id, fallback = null) {
  const element = document.getElementById(id);
  if (!element || !element.textContent) return fallback;
  return JSON.parse(element.textContent);
}

/** The `csrftoken` cookie's value (Django's CSRF cookie is readable by design). */
export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "csrftoken") return decodeURIComponent(rest.join("="));
  }
  return "";
}

/**
 * A JSON request to the site's REST API, with the session and the CSRF header.
 * Rejects with an Error carrying `status` on any non-2xx answer.
 * @param {string} path
 * @param {{method?: string, body?: any}} [options]
 */
export async function api(path, { method = "GET", body } = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = /** @type {Error & {status?: number, data?: any}} */ (
      new Error((data && data.detail) || `HTTP ${response.status}`)
    );
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

/** @param {string} iso */
export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/**
 * Append `text` to `parent` as text nodes, with each `@mention` in a <mark>
 * (never HTML: user text stays text). Mirrors the server's mention pattern.
 * @param {Node} parent
 * @param {string} text
 * @param {string} [me]  the signed-in username: its mentions get `mention-me`
 */
export function appendWithMentions(parent, text, me = "") {
  const pattern = /(?<![\p{L}\p{N}_@])@([\p{L}\p{N}_.@+-]{1,150})/gu;
  let position = 0;
  for (const match of text.matchAll(pattern)) {
    const name = match[1].replace(/\.+$/, "");
    if (!name) continue;
    const start = match.index ?? 0;
    const end = start + 1 + name.length;
    if (start > position) parent.appendChild(document.createTextNode(text.slice(position, start)));
    const mark = document.createElement("mark");
    mark.className = name === me ? "mention mention-me" : "mention";
    mark.textContent = text.slice(start, end);
    parent.appendChild(mark);
    position = end;
  }
  if (position < text.length) parent.appendChild(document.createTextNode(text.slice(position)));
}

const OFFLINE_TEXT = "Offline — messages will be sent when you're back";
const CLOSED_TEXT = {
  signed_out: "Signed out",
  disconnected_by_admin: "Disconnected by an administrator",
  too_many_connections: "Too many open connections — close some tabs, then reload",
};

/** What the badge says now, and its class. */
function badgeState() {
  const state = client.state;
  const offline = typeof navigator !== "undefined" && navigator.onLine === false;
  if (state === "open") return { text: "Live", kind: "live" };
  if (state === "closed") {
    const reason = lastChange ? lastChange.reason : "";
    return { text: CLOSED_TEXT[/** @type {keyof CLOSED_TEXT} */ (reason)] || "Disconnected", kind: "closed" };
  }
  if (offline || client.pendingPublishes > 0) return { text: OFFLINE_TEXT, kind: "offline" };
  if (state === "reconnecting" && client.retryAt) {
    const seconds = Math.ceil((client.retryAt - Date.now()) / 1000);
    if (seconds > 0) return { text: `Reconnecting in ${seconds} s…`, kind: "reconnecting" };
    return { text: "Reconnecting…", kind: "reconnecting" };
  }
  if (state === "connecting" && lastChange && lastChange.reason !== "initial") {
    return { text: "Reconnecting…", kind: "reconnecting" };
  }
  return { text: "Connecting…", kind: "connecting" };
}

/** @type {{state: string, reason: string} | null} */
let lastChange = null;
/** @type {any} */
let ticker = null;

/** Bring every `[data-connection-badge]` (and the signed-out notes) up to date. */
export function refreshBadges() {
  const { text, kind } = badgeState();
  for (const badge of document.querySelectorAll("[data-connection-badge]")) {
    if (badge.textContent !== text) badge.textContent = text;
    badge.setAttribute("data-state", kind);
  }
  const signedOut = client.state === "closed" && lastChange?.reason === "signed_out";
  for (const note of document.querySelectorAll("[data-signed-out-note]")) {
    /** @type {HTMLElement} */ (note).hidden = !signedOut;
  }
  // Count down while waiting (and notice queued publishes); stop once live or closed.
  const waiting = client.state === "reconnecting" || client.state === "connecting";
  if (waiting && ticker === null) ticker = setInterval(refreshBadges, 250);
  if (!waiting && ticker !== null) {
    clearInterval(ticker);
    ticker = null;
  }
}

client.addEventListener("statechange", (event) => {
  lastChange = /** @type {CustomEvent} */ (event).detail;
  refreshBadges();
});
window.addEventListener("online", refreshBadges);
window.addEventListener("offline", refreshBadges);
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", refreshBadges);
else refreshBadges();
