// @ts-check
/**
 * page.js: what every page's script shares. One `RealtimeClient` per page
 * (`client`), shared by all widgets (notifications bell, announcements, the
 * room, the dashboard); helpers to read server data (`json_script`), call the
 * REST API with the CSRF header; the one connection status in the header
 * (words, a countdown, "Reconnect now" while waiting, "Reload" once closed
 * for good) and, when the session ends (4401), the removal of everything
 * private on the page in favour of a sign-in prompt.
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

// ---- the connection status --------------------------------------------------
//
// One status in the header of every page (base.html), in words: `[data-connection-badge]`
// is its live region (`role="status"`, `aria-live="polite"`) and changes only when the
// kind of trouble changes; the countdown (`[data-connection-detail]`) is outside it, so
// a screen reader hears "Can't reach the server" once, not every second.

export const OFFLINE_TEXT = "Offline — messages will be sent when you're back";

/** The words of a close that stays closed, by the client's `reason`. */
const CLOSED_TEXT = {
  signed_out: "Signed out",
  disconnected_by_admin: "Disconnected by an administrator",
  too_many_connections: "Too many open connections — close some tabs, then reload",
  binary_frame: "Disconnected after an error",
  frame_too_large: "Disconnected: a message was too large",
  normal_closure: "Disconnected by the server",
};

/**
 * The connection as the page understands it, from the client's last `statechange`.
 * `problem` is why it is not open (`offline`, `restarting`, `unreachable`, `closed`),
 * kept through the retries of one outage; null while live or on the first connect.
 * @typedef {{state: string, reason: string, cause: string|null, code: number|null,
 *   problem: "offline"|"restarting"|"unreachable"|"closed"|null, text: string}} Connection
 */

/** @type {Connection} */
let connection = { state: client.state, reason: "initial", cause: null, code: null, problem: null, text: "Connecting…" };
/** The person clicked "Reconnect now" while an attempt was running: try again at once if it fails. */
let reconnectAsked = false;
/** @type {any} */
let ticker = null;

/** The page's view of the connection (read it in a `statechange` listener: page.js's runs first). */
export function connectionState() {
  return connection;
}

/**
 * Fold a `statechange` detail into `connection`.
 * @param {{state: string, reason: string, cause?: string|null, code?: number|null}} detail
 */
function understand(detail) {
  const { state, reason } = detail;
  const cause = detail.cause ?? null;
  const code = detail.code ?? null;
  /** @type {Connection["problem"]} */
  let problem = connection.problem;
  let text = connection.text;
  if (state === "open") {
    problem = null;
    text = "Live";
  } else if (state === "closed") {
    problem = "closed";
    text = CLOSED_TEXT[/** @type {keyof CLOSED_TEXT} */ (reason)] || "Disconnected";
  } else if (state === "reconnecting") {
    if (cause === "offline") {
      problem = "offline";
      text = OFFLINE_TEXT;
    } else if (cause === "closed" && code === 4012) {
      problem = "restarting";
      text = "The server is restarting";
    } else if (cause === "closed") {
      problem = "unreachable";
      text = "The server closed the connection";
    } else {
      problem = "unreachable";
      text = "Can't reach the server";
    }
  } else if (reason === "initial") {
    problem = null;
    text = "Connecting…";
  } else if (problem === null || problem === "offline") {
    // Back online (or a drop noticed only now): trying.
    problem = null;
    text = "Reconnecting…";
  } // else: a retry during an outage keeps the outage's words; the detail says "trying now…"
  connection = { state, reason, cause, code, problem, text };
}

/** The countdown and the like, beside the words (not announced). */
function detailText() {
  const { state, problem } = connection;
  if (state === "reconnecting" && problem !== "offline") {
    const verb = problem === "restarting" ? "reconnecting" : "retrying";
    const retryAt = client.retryAt;
    const seconds = retryAt ? Math.ceil((retryAt - Date.now()) / 1000) : 0;
    return seconds > 0 ? `— ${verb} in ${seconds} s` : `— ${verb}…`;
  }
  if (state === "connecting" && problem !== null) return "— trying now…";
  return "";
}

/** @param {string} selector */
function all(selector) {
  return /** @type {HTMLElement[]} */ (Array.from(document.querySelectorAll(selector)));
}

/** Bring the connection status (and the signed-out state of the page) up to date. */
export function refreshStatus() {
  const { state, problem, text, reason } = connection;
  const kind = state === "open" ? "live" : problem ?? "connecting";
  for (const status of all("[data-connection-status]")) {
    status.hidden = false;
    status.dataset.state = kind;
  }
  for (const badge of all("[data-connection-badge]")) {
    if (badge.textContent !== text) badge.textContent = text;
    badge.dataset.state = kind;
  }
  const detail = detailText();
  for (const element of all("[data-connection-detail]")) {
    if (element.textContent !== detail) element.textContent = detail;
    element.hidden = detail === "";
  }
  const waiting = state === "reconnecting" || (state === "connecting" && problem !== null);
  for (const button of all("[data-reconnect-now]")) button.hidden = !waiting;
  for (const button of all("[data-reload]")) button.hidden = state !== "closed";
  if (state === "closed" && reason === "signed_out") showSignedOut();
  // Count down while waiting; stop once live or closed.
  if (waiting && ticker === null) ticker = setInterval(refreshStatus, 250);
  if (!waiting && ticker !== null) {
    clearInterval(ticker);
    ticker = null;
  }
}

let signedOutShown = false;

/**
 * The session ended (4401): nothing private stays on the page. Every
 * `[data-private]` element (the header's bell, name and sign-out button, the
 * page's main content) and the page's JSON data go; the `[data-signed-out]`
 * sign-in prompts appear, their `[data-sign-in]` links to the login page
 * with `next` = this page.
 */
function showSignedOut() {
  if (signedOutShown) return;
  signedOutShown = true;
  for (const element of all("[data-private]")) element.remove();
  for (const element of all('script[type="application/json"]')) element.remove();
  // Back to this page after signing in (`next` written like Django's own: slashes kept).
  const next = encodeURIComponent(location.pathname + location.search).replace(/%2F/gi, "/");
  for (const link of all("a[data-sign-in]")) {
    const url = new URL(/** @type {HTMLAnchorElement} */ (link).href);
    link.setAttribute("href", `${url.pathname}?next=${next}`);
  }
  for (const element of all("[data-signed-out]")) element.hidden = false;
  document.title = "Signed out · Realtime";
}

function wireButtons() {
  for (const button of all("[data-reconnect-now]")) {
    button.addEventListener("click", () => {
      if (client.state === "reconnecting") client.reconnectNow();
      else reconnectAsked = true; // an attempt is running: if it fails, try again at once
    });
  }
  for (const button of all("[data-reload]")) button.addEventListener("click", () => location.reload());
}

client.addEventListener("statechange", (event) => {
  const detail = /** @type {CustomEvent} */ (event).detail;
  understand(detail);
  if (detail.state !== "connecting" && detail.state !== "reconnecting") reconnectAsked = false;
  refreshStatus();
  if (detail.state === "reconnecting" && reconnectAsked) {
    reconnectAsked = false;
    // After every listener has seen this change, not in the middle of it.
    setTimeout(() => client.reconnectNow(), 0);
  }
});

// A client made while the browser reports offline starts `reconnecting` before
// this module could listen to it.
if (client.state !== "connecting") {
  const offline = typeof navigator !== "undefined" && navigator.onLine === false;
  understand({ state: client.state, reason: offline ? "offline" : "retry", cause: offline ? "offline" : "unreachable" });
}

function start() {
  wireButtons();
  refreshStatus();
}
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
