// @ts-check
/**
 * room.js: a room page. The server rendered the recent history; this module
 * subscribes to `room:<slug>` from the last rendered offset (so nothing in
 * between is lost or doubled), shows live messages, who is online, and sends
 * messages: each gets a client id when typed and keeps it, so a message is
 * stored once however often it is sent (a resend after a reconnect, a
 * "Retry"). It shows as pending (queued while the connection is down) until
 * its ack, as failed when refused or unanswered, and as sent when an ack
 * comes, late ones included (`publishacked`).
 * @module room
 */
import { api, appendWithMentions, client, connectionState, formatTime, readJson } from "./page.js";
import "./unread.js"; // read state, jump to a linked message
import "./online.js"; // the "Online" drawer on narrow screens

/** @type {{slug: string, topic: string, last_offset: number, messages_url: string, me: {id: number, username: string}}} */
const room = readJson("room-data");
const list = /** @type {HTMLOListElement} */ (document.querySelector("[data-messages]"));
const outbox = /** @type {HTMLOListElement} */ (document.querySelector("[data-outbox]"));
const emptyNote = /** @type {HTMLElement} */ (document.querySelector("[data-empty-note]"));
const form = /** @type {HTMLFormElement} */ (document.querySelector("[data-send-form]"));
const input = /** @type {HTMLTextAreaElement} */ (form.querySelector("textarea"));
const presenceList = /** @type {HTMLUListElement} */ (document.querySelector("[data-presence]"));
const presenceCount = /** @type {HTMLElement} */ (document.querySelector("[data-presence-count]"));
const presenceNote = /** @type {HTMLElement} */ (document.querySelector("[data-presence-note]"));

/**
 * A message typed here and not yet shown as stored.
 * @typedef {{id: string, text: string, item: HTMLLIElement, status: HTMLElement, meta: HTMLElement,
 *   state: "pending"|"failed"|"sent", code: string|null}} Draft
 */

/** Messages typed here, not shown as stored yet: client id -> draft. */
const drafts = new Map();
/** Sent messages whose ack came before their event: offset -> draft (the event replaces it). */
const ackedPending = new Map();

/** @typedef {{offset: number, id: number, text: string, author: {id: number, username: string}, created_at: string}} Message */

// Server-rendered times are UTC; show them in the reader's time zone.
for (const time of list.querySelectorAll("time[datetime]")) {
  time.textContent = formatTime(time.getAttribute("datetime") || "");
}

/** @param {Message} message */
function renderMessage(message) {
  const item = document.createElement("li");
  item.className = message.author.id === room.me.id ? "message mine" : "message";
  item.dataset.offset = String(message.offset);
  item.dataset.id = String(message.id);
  const meta = document.createElement("div");
  meta.className = "message-meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.author.username;
  const time = document.createElement("time");
  time.dateTime = message.created_at;
  time.textContent = formatTime(message.created_at);
  meta.append(author, " ", time);
  const text = document.createElement("p");
  text.className = "text";
  appendWithMentions(text, message.text, room.me.username);
  item.append(meta, text);
  return item;
}

function nearBottom() {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

function scrollToEnd() {
  list.scrollTop = list.scrollHeight;
}

/** Insert a message in offset order, once. @param {Message} message */
function insertMessage(message) {
  if (list.querySelector(`:scope > [data-offset="${Number(message.offset)}"]`)) return;
  const stick = nearBottom();
  const item = renderMessage(message);
  let before = null;
  for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
    if (Number(/** @type {HTMLElement} */ (node).dataset.offset) < message.offset) break;
    before = node;
  }
  list.insertBefore(item, before);
  emptyNote.hidden = true;
  const draft = ackedPending.get(message.offset);
  if (draft) forget(draft);
  if (stick || message.author.id === room.me.id) scrollToEnd();
}

/** After a `resync`: the newest page of history over REST replaces what is shown. */
async function reloadHistory() {
  try {
    const page = await api(`${room.messages_url}?limit=50`);
    list.replaceChildren();
    for (const message of page.results) insertMessage(message);
    emptyNote.hidden = list.childElementCount > 0;
    scrollToEnd();
  } catch (error) {
    console.error("could not reload the history", error);
  }
}

/** @param {{id: number|string, username: string}[]} users */
function renderPresence(users) {
  const sorted = [...users].sort((a, b) => a.username.localeCompare(b.username));
  presenceList.replaceChildren(
    ...sorted.map((user) => {
      const item = document.createElement("li");
      item.dataset.userId = String(user.id);
      item.textContent = user.username;
      if (String(user.id) === String(room.me.id)) {
        const you = document.createElement("span");
        you.className = "muted";
        you.textContent = " (you)";
        item.append(you);
      }
      return item;
    }),
  );
  presenceCount.textContent = `(${users.length})`;
}

client.subscribe(
  room.topic,
  (event) => {
    if (event.data.kind !== "message" || typeof event.offset !== "number") return;
    insertMessage({ ...(/** @type {any} */ (event.data)), offset: event.offset });
  },
  { since: room.last_offset, onPresence: renderPresence },
);
client.addEventListener("resync", (event) => {
  if (/** @type {CustomEvent} */ (event).detail.topic === room.topic) reloadHistory();
});

/** Who is online is only known while connected: say why the list is empty otherwise. */
function showPresenceNote() {
  const { state, reason } = connectionState();
  if (state === "open") {
    presenceNote.hidden = true;
    return;
  }
  presenceList.replaceChildren();
  presenceCount.textContent = "";
  presenceNote.hidden = false;
  if (state === "closed") presenceNote.textContent = "not connected";
  else if (state === "connecting" && reason === "initial") presenceNote.textContent = "connecting…";
  else presenceNote.textContent = "reconnecting…";
}

client.addEventListener("statechange", (event) => {
  const { state } = /** @type {CustomEvent} */ (event).detail;
  showPresenceNote();
  for (const draft of drafts.values()) if (draft.state === "pending") draft.status.textContent = pendingText();
  if (state === "open") {
    // A message that got no answer may have been stored all the same, and the
    // answer died with the old connection: send it again with its id (stored
    // once either way); the ack says which.
    for (const draft of drafts.values()) if (draft.state === "failed" && draft.code === "timeout") publish(draft);
  }
  if (state === "closed") {
    input.disabled = true;
    /** @type {HTMLButtonElement} */ (form.querySelector("button")).disabled = true;
  }
});

// Every ack, also one that comes after the publish gave up waiting (`late`).
client.addEventListener("publishacked", (event) => {
  const { topic, offset, id } = /** @type {CustomEvent} */ (event).detail;
  const draft = topic === room.topic ? drafts.get(id) : undefined;
  if (draft) stored(draft, offset);
});

/** A random client message id (32 hex characters; `crypto.randomUUID` needs HTTPS). */
function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** What a pending message says, from the state of the connection. */
function pendingText() {
  const { state, problem } = connectionState();
  if (state === "open") return "Sending…";
  if (problem === "offline") return "Queued — will be sent when you're back online";
  if (problem === "restarting" || problem === "unreachable") return "Queued — will be sent when the server is back";
  return "Waiting for the connection…";
}

/** Why a message was not sent, in words. @param {Error & {code?: string}} error */
function failureText(error) {
  switch (error.code) {
    case "timeout":
      return "Not sent: no answer from the server";
    case "rate_limited":
      return "Not sent: too many messages at once";
    case "unavailable":
      return "Not sent: the server cannot store messages right now";
    case "queue_full":
      return "Not sent: too many messages waiting";
    case "closed":
      return "Not sent: disconnected";
    default:
      return `Not sent: ${error.message}`;
  }
}

/** Refusals that a retry cannot change. */
const FINAL_CODES = new Set(["closed", "invalid", "forbidden", "not_found", "too_large"]);

/** Show `text` as pending and send it. @param {string} text */
function send(text) {
  const item = document.createElement("li");
  item.className = "message mine pending";
  const meta = document.createElement("div");
  meta.className = "message-meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = room.me.username;
  const status = document.createElement("span");
  status.className = "status";
  meta.append(author, " ", status);
  const body = document.createElement("p");
  body.className = "text";
  appendWithMentions(body, text, room.me.username);
  item.append(meta, body);
  outbox.append(item);
  /** @type {Draft} */
  const draft = { id: newId(), text, item, status, meta, state: "pending", code: null };
  item.dataset.clientId = draft.id;
  drafts.set(draft.id, draft);
  scrollToEnd();
  publish(draft);
}

/** Send (or send again) a draft, always with its own id. @param {Draft} draft */
function publish(draft) {
  draft.state = "pending";
  draft.code = null;
  draft.item.className = "message mine pending";
  draft.status.textContent = pendingText();
  for (const button of draft.meta.querySelectorAll("button")) button.remove();
  client.publish(room.topic, { text: draft.text }, { id: draft.id }).then(
    ({ offset }) => stored(draft, offset),
    (error) => failed(draft, error),
  );
}

/**
 * The server has the message (an ack, on time or late): it is shown once the
 * event is, or at once if the event is here already.
 * @param {Draft} draft
 * @param {number|null} offset
 */
function stored(draft, offset) {
  if (drafts.get(draft.id) !== draft) return; // already shown as stored
  if (typeof offset !== "number" || list.querySelector(`:scope > [data-offset="${offset}"]`)) {
    forget(draft);
    return;
  }
  draft.state = "sent";
  draft.code = null;
  draft.item.className = "message mine sent";
  draft.status.textContent = "Sent";
  for (const button of draft.meta.querySelectorAll("button")) button.remove();
  ackedPending.set(offset, draft);
}

/** @param {Draft} draft @param {Error & {code?: string}} error */
function failed(draft, error) {
  if (drafts.get(draft.id) !== draft || draft.state === "sent") return;
  draft.state = "failed";
  draft.code = error.code ?? null;
  draft.item.className = "message mine failed";
  draft.status.textContent = failureText(error);
  if (!FINAL_CODES.has(draft.code ?? "")) {
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "link-button";
    retry.textContent = "Retry";
    retry.addEventListener("click", () => {
      publish(draft);
      input.focus();
    });
    draft.meta.append(retry);
  }
}

/** The message is in the history: its draft goes. @param {Draft} draft */
function forget(draft) {
  draft.item.remove();
  drafts.delete(draft.id);
  for (const [offset, other] of ackedPending) if (other === draft) ackedPending.delete(offset);
}

showPresenceNote();

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  send(text);
  input.focus();
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});
scrollToEnd();
