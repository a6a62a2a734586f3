// @ts-check
/**
 * room.js: a room page. The server rendered the recent history; this module
 * subscribes to `room:<slug>` from the last rendered offset (so nothing in
 * between is lost or doubled), shows live messages, who is online, and sends
 * messages (pending until their ack, marked when they fail, with a retry).
 * @module room
 */
import { api, appendWithMentions, client, formatTime, readJson, refreshBadges } from "./page.js";

/** @type {{slug: string, topic: string, last_offset: number, messages_url: string, me: {id: number, username: string}}} */
const room = readJson("room-data");
const list = /** @type {HTMLOListElement} */ (document.querySelector("[data-messages]"));
const outbox = /** @type {HTMLOListElement} */ (document.querySelector("[data-outbox]"));
const emptyNote = /** @type {HTMLElement} */ (document.querySelector("[data-empty-note]"));
const form = /** @type {HTMLFormElement} */ (document.querySelector("[data-send-form]"));
const input = /** @type {HTMLTextAreaElement} */ (form.querySelector("textarea"));
const presenceList = /** @type {HTMLUListElement} */ (document.querySelector("[data-presence]"));
const presenceCount = /** @type {HTMLElement} */ (document.querySelector("[data-presence-count]"));

/** Sent messages whose ack came before their event: offset -> pending item. */
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
  const pending = ackedPending.get(message.offset);
  if (pending) {
    pending.remove();
    ackedPending.delete(message.offset);
  }
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
client.addEventListener("statechange", (event) => {
  // Presence is only known while connected.
  if (/** @type {CustomEvent} */ (event).detail.state !== "open") {
    presenceList.replaceChildren();
    presenceCount.textContent = "";
  }
  if (/** @type {CustomEvent} */ (event).detail.state === "closed") {
    input.disabled = true;
    /** @type {HTMLButtonElement} */ (form.querySelector("button")).disabled = true;
  }
});

/** Send `text`, shown as pending until the ack; a failure is marked and can be retried. */
function send(text, item = document.createElement("li")) {
  item.className = "message mine pending";
  item.replaceChildren();
  const meta = document.createElement("div");
  meta.className = "message-meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = room.me.username;
  const status = document.createElement("span");
  status.className = "status";
  status.textContent = client.state === "open" ? "Sending…" : "Waiting for the connection…";
  meta.append(author, " ", status);
  const body = document.createElement("p");
  body.className = "text";
  appendWithMentions(body, text, room.me.username);
  item.append(meta, body);
  if (!item.isConnected) outbox.append(item);
  scrollToEnd();
  client.publish(room.topic, { text }).then(
    ({ offset }) => {
      if (typeof offset === "number" && list.querySelector(`:scope > [data-offset="${offset}"]`)) {
        item.remove();
      } else if (typeof offset === "number") {
        status.textContent = "Sent";
        ackedPending.set(offset, item); // the event itself replaces it
      } else {
        item.remove();
      }
      refreshBadges();
    },
    (error) => {
      item.className = "message mine failed";
      status.textContent = `Not sent: ${error.message}`;
      if (error.code !== "closed") {
        const retry = document.createElement("button");
        retry.type = "button";
        retry.className = "link-button";
        retry.textContent = "Retry";
        retry.addEventListener("click", () => send(text, item));
        meta.append(" ", retry);
      }
      refreshBadges();
    },
  );
  refreshBadges();
}

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
