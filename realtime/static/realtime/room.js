// @ts-check
/**
 * room.js: a room page. The server rendered the recent history; this module
 * subscribes to `room:<slug>` from the topic's offset at render time (so
 * nothing in between is lost or doubled), shows live messages, edits and
 * deletions, who is online and who is typing, loads older messages over REST
 * as the reader scrolls up (`before=`), and sends messages: each gets a
 * client id when typed and keeps it, so a message is stored once however
 * often it is sent (a resend after a reconnect, a "Retry"). It shows as
 * pending (queued while the connection is down) until its ack, as failed
 * when refused or unanswered, and as sent when an ack comes, late ones
 * included (`publishacked`).
 *
 * Message text is rendered by richtext.js (links, `code`, mentions of real
 * users) with DOM calls only; times and day separators by when.js.
 * @module room
 */
import { api, client, connectionState, readJson } from "./page.js";
import { mentionMatches, mentionQuery, renderRichText } from "./richtext.js";
import { dayKey, dayLabel, fullLabel, timeLabel } from "./when.js";
import "./unread.js"; // read state, jump to a linked message
import "./online.js"; // the "Online" drawer on narrow screens

/**
 * @type {{slug: string, topic: string, last_offset: number, has_more: boolean, messages_url: string,
 *   me: {id: number, username: string}, can_moderate: boolean, people: {id: number, username: string}[],
 *   max_length: number}}
 */
const room = readJson("room-data");
const list = /** @type {HTMLOListElement} */ (document.querySelector("[data-messages]"));
const outbox = /** @type {HTMLOListElement} */ (document.querySelector("[data-outbox]"));
const emptyNote = /** @type {HTMLElement} */ (document.querySelector("[data-empty-note]"));
const form = /** @type {HTMLFormElement} */ (document.querySelector("[data-send-form]"));
const input = /** @type {HTMLTextAreaElement} */ (form.querySelector("textarea"));
const counter = /** @type {HTMLElement} */ (document.querySelector("[data-send-counter]"));
const options = /** @type {HTMLUListElement} */ (document.querySelector("[data-mention-options]"));
const typingNote = /** @type {HTMLElement} */ (document.querySelector("[data-typing]"));
const newBelow = /** @type {HTMLButtonElement} */ (document.querySelector("[data-new-below]"));
const historyTop = /** @type {HTMLElement} */ (document.querySelector("[data-history-top]"));
const historyStatus = /** @type {HTMLElement} */ (document.querySelector("[data-history-status]"));
const presenceList = /** @type {HTMLUListElement} */ (document.querySelector("[data-presence]"));
const presenceCount = /** @type {HTMLElement} */ (document.querySelector("[data-presence-count]"));
const presenceNote = /** @type {HTMLElement} */ (document.querySelector("[data-presence-note]"));
const MAX_LENGTH = room.max_length || 2000;
const TYPING_EVERY_MS = 2000;
const TYPING_SHOWN_MS = 5000;

/**
 * A message typed here and not yet shown as stored.
 * @typedef {{id: string, text: string, item: HTMLLIElement, status: HTMLElement, meta: HTMLElement,
 *   state: "pending"|"failed"|"sent", code: string|null}} Draft
 */

/** Messages typed here, not shown as stored yet: client id -> draft. */
const drafts = new Map();
/** Sent messages whose ack came before their event: offset -> draft (the event replaces it). */
const ackedPending = new Map();

/**
 * @typedef {{offset: number, id: number, text: string, author: {id: number, username: string},
 *   created_at: string, edited_at?: string|null, mentions?: {id: number, username: string}[]}} Message
 */

/** What each shown message says now: id -> {text, mentions}; the editor starts from it. */
const shown = new Map();
/** Deleted message ids: an older page fetched before the deletion must not bring one back. */
const deletedIds = new Set();
/** The newest edit seen live per message id, for a page of history that was read before it. */
const latestEdits = new Map();
/** People to offer after `@`: the room's members or recent authors, who is online, who writes. */
const people = new Map(room.people.map((person) => [person.username, person]));

// ---- rendering ---------------------------------------------------------------

/** @param {HTMLTimeElement} time @param {string} iso */
function setTime(time, iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return;
  time.dateTime = iso;
  time.textContent = timeLabel(date);
  time.title = fullLabel(date);
}

/** The "(edited)" note of a message, its full time in the title. @param {HTMLElement} item @param {string} iso */
function markEdited(item, iso) {
  const meta = /** @type {HTMLElement} */ (item.querySelector(".message-meta"));
  let note = /** @type {HTMLElement|null} */ (meta.querySelector(".edited"));
  if (!note) {
    note = document.createElement("span");
    note.className = "edited";
    note.textContent = "(edited)";
    const time = meta.querySelector("time");
    (time ?? meta.firstChild)?.after(" ", note);
  }
  note.dataset.editedAt = iso;
  const date = new Date(iso);
  note.title = Number.isNaN(date.getTime()) ? "edited" : `edited ${fullLabel(date)}`;
}

/** @param {HTMLElement} item @param {string} text @param {string[]} mentions */
function setText(item, text, mentions) {
  const body = /** @type {HTMLElement} */ (item.querySelector(".text"));
  body.dir = "auto";
  renderRichText(body, text, { mentions, me: room.me.username });
  shown.set(Number(item.dataset.id), { text, mentions });
}

/** @param {Message} message */
function renderMessage(message) {
  const item = document.createElement("li");
  item.className = message.author.id === room.me.id ? "message mine" : "message";
  item.dataset.offset = String(message.offset);
  item.dataset.id = String(message.id);
  item.dataset.authorId = String(message.author.id);
  const meta = document.createElement("div");
  meta.className = "message-meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.author.username;
  const time = document.createElement("time");
  setTime(time, message.created_at);
  meta.append(author, " ", time);
  const text = document.createElement("p");
  text.className = "text";
  item.append(meta, text);
  setText(item, message.text, (message.mentions ?? []).map((m) => m.username));
  if (message.edited_at) markEdited(item, message.edited_at);
  addActions(item);
  return item;
}

/** The server-rendered history: times in the reader's zone, links and code, actions. */
for (const item of list.querySelectorAll(":scope > li.message")) {
  const element = /** @type {HTMLLIElement} */ (item);
  const time = element.querySelector("time[datetime]");
  if (time) setTime(/** @type {HTMLTimeElement} */ (time), time.getAttribute("datetime") || "");
  const body = /** @type {HTMLElement} */ (element.querySelector(".text"));
  const mentions = (element.dataset.mentions || "").split(" ").filter(Boolean);
  setText(element, body.textContent || "", mentions);
  const edited = /** @type {HTMLElement|null} */ (element.querySelector(".edited"));
  if (edited?.dataset.editedAt) markEdited(element, edited.dataset.editedAt);
  addActions(element);
}

/** The local day of a message's time ("" when it has none). @param {Element} item */
function messageDay(item) {
  const iso = item.querySelector("time")?.getAttribute("datetime");
  const date = iso ? new Date(iso) : null;
  return date && !Number.isNaN(date.getTime()) ? dayKey(date) : "";
}

/** @param {Element} item */
function separatorFor(item) {
  const date = new Date(item.querySelector("time")?.getAttribute("datetime") || "");
  const separator = document.createElement("li");
  separator.className = "day-separator";
  separator.dataset.day = dayKey(date);
  const label = document.createElement("span");
  label.textContent = dayLabel(date);
  separator.append(label);
  return separator;
}

/**
 * A separator before each day's first message, and no other: only what
 * changed is touched (the list is a live region; nothing is announced twice).
 */
function updateSeparators() {
  let previous = "";
  for (const child of [...list.children]) {
    const element = /** @type {HTMLElement} */ (child);
    if (element.classList.contains("day-separator")) {
      const next = element.nextElementSibling;
      const day = next?.classList.contains("message") ? messageDay(next) : "";
      if (!day || day === previous || element.dataset.day !== day) element.remove();
      continue;
    }
    const day = messageDay(element);
    if (!day || day === previous) continue;
    previous = day;
    const before = /** @type {HTMLElement|null} */ (element.previousElementSibling);
    if (!(before?.classList.contains("day-separator") && before.dataset.day === day)) element.before(separatorFor(element));
  }
}

/** At midnight "Today" becomes "Yesterday" and times gain their date. */
let today = dayKey(new Date());
setInterval(() => {
  if (dayKey(new Date()) === today) return;
  today = dayKey(new Date());
  for (const time of list.querySelectorAll("time[datetime]")) {
    setTime(/** @type {HTMLTimeElement} */ (time), time.getAttribute("datetime") || "");
  }
  for (const separator of list.querySelectorAll(":scope > li.day-separator")) separator.remove();
  updateSeparators();
}, 60_000);

function nearBottom() {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

function scrollToEnd() {
  list.scrollTop = list.scrollHeight;
  hideNewBelow();
}

/** @param {number} offset */
function messageAt(offset) {
  return /** @type {HTMLLIElement|null} */ (list.querySelector(`:scope > li.message[data-offset="${Number(offset)}"]`));
}

/** @param {number} id */
function messageWithId(id) {
  return /** @type {HTMLLIElement|null} */ (list.querySelector(`:scope > li.message[data-id="${Number(id)}"]`));
}

/**
 * Insert a message in offset order, once. Returns whether it was new.
 * @param {Message} message
 * @param {{live?: boolean}} [how]  live: arriving now (may stick to the bottom or raise "new below")
 */
function insertMessage(message, { live = false } = {}) {
  if (deletedIds.has(message.id) || messageAt(message.offset)) return false;
  const stick = nearBottom();
  const edit = latestEdits.get(message.id);
  if (edit && (!message.edited_at || new Date(edit.edited_at) > new Date(message.edited_at))) {
    message = { ...message, text: edit.text, edited_at: edit.edited_at, mentions: edit.mentions };
  }
  const item = renderMessage(message);
  let before = null;
  for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
    const offset = /** @type {HTMLElement} */ (node).dataset.offset;
    if (offset !== undefined && Number(offset) < message.offset) break;
    before = node;
  }
  list.insertBefore(item, before);
  emptyNote.hidden = true;
  if (!people.has(message.author.username)) people.set(message.author.username, message.author);
  const draft = ackedPending.get(message.offset);
  if (draft) forget(draft);
  if (live) {
    updateSeparators();
    stopTyping(message.author.id);
    if (stick || message.author.id === room.me.id) scrollToEnd();
    else showNewBelow();
  }
  return true;
}

/** @param {{id: number, text: string, edited_at: string, mentions?: {username: string}[]}} data */
function applyEdit(data) {
  const previous = latestEdits.get(data.id);
  if (!previous || new Date(data.edited_at) >= new Date(previous.edited_at)) latestEdits.set(data.id, data);
  const item = messageWithId(data.id);
  if (!item || item.classList.contains("deleted")) return;
  setText(item, data.text, (data.mentions ?? []).map((m) => m.username));
  markEdited(item, data.edited_at);
}

/** A deleted message stays in place as "message deleted" until the next load. @param {number} id */
function applyDelete(id) {
  deletedIds.add(id);
  shown.delete(id);
  const item = messageWithId(id);
  if (!item) return;
  item.classList.add("deleted");
  item.querySelector(".actions")?.remove();
  item.querySelector(".edit-form")?.remove();
  item.querySelector(".edited")?.remove();
  const body = /** @type {HTMLElement} */ (item.querySelector(".text"));
  body.hidden = false;
  body.replaceChildren("message deleted");
}

/** After a `resync`: the newest page of history over REST replaces what is shown. */
async function reloadHistory() {
  try {
    const page = await api(`${room.messages_url}?limit=50`);
    list.replaceChildren();
    shown.clear();
    for (const message of page.results) insertMessage(message);
    updateSeparators();
    emptyNote.hidden = list.childElementCount > 0;
    setHasMore(page.has_more);
    scrollToEnd();
  } catch (error) {
    console.error("could not reload the history", error);
  }
}

// ---- older messages: scrolling up ---------------------------------------------

let hasMore = room.has_more;
let loadingOlder = false;

/** @param {boolean} more */
function setHasMore(more) {
  hasMore = more;
  let button = /** @type {HTMLButtonElement|null} */ (historyTop.querySelector("[data-load-older]"));
  if (more && !button) {
    button = document.createElement("button");
    button.type = "button";
    button.className = "link-button";
    button.dataset.loadOlder = "";
    button.textContent = "Load older messages";
    button.addEventListener("click", loadOlder);
    historyTop.prepend(button);
  }
  if (button) button.hidden = !more;
  if (!more && list.querySelector(":scope > li.message")) historyStatus.textContent = "This is the start of the room.";
}

/** The page before the oldest message shown, inserted above it without moving what the reader sees. */
async function loadOlder() {
  if (loadingOlder || !hasMore) return;
  const oldest = /** @type {HTMLElement|null} */ (list.querySelector(":scope > li.message[data-offset]"));
  const before = oldest ? `&before=${Number(oldest.dataset.offset)}` : "";
  loadingOlder = true;
  historyStatus.textContent = "Loading older messages…";
  try {
    const page = await api(`${room.messages_url}?limit=50${before}`);
    const height = list.scrollHeight;
    const top = list.scrollTop;
    // Old messages are not news: not read out by screen readers as they load.
    list.setAttribute("aria-live", "off");
    for (const message of page.results) insertMessage(message);
    updateSeparators();
    list.scrollTop = top + (list.scrollHeight - height);
    setTimeout(() => list.setAttribute("aria-live", "polite"), 0);
    historyStatus.textContent = "";
    setHasMore(page.has_more);
  } catch (error) {
    historyStatus.textContent = "Could not load older messages. Scroll up or use the button to try again.";
    console.error("could not load older messages", error);
  } finally {
    loadingOlder = false;
  }
}

historyTop.querySelector("[data-load-older]")?.addEventListener("click", loadOlder);
list.addEventListener("scroll", () => {
  if (list.scrollTop < 150) loadOlder();
  if (nearBottom()) hideNewBelow();
});

// ---- "new messages below" ------------------------------------------------------

let unseen = 0;

function showNewBelow() {
  unseen += 1;
  newBelow.textContent = unseen === 1 ? "1 new message below ↓" : `${unseen} new messages below ↓`;
  newBelow.hidden = false;
}

function hideNewBelow() {
  unseen = 0;
  newBelow.hidden = true;
}

newBelow.addEventListener("click", () => {
  scrollToEnd();
  list.focus();
});

// ---- edit and delete -------------------------------------------------------------

/** @param {string} label @param {() => void} onClick */
function actionButton(label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link-button";
  button.textContent = label;
  button.addEventListener("click", onClick);
  return button;
}

/** Edit (own messages) and Delete (own; the owner and staff: any) in a message's meta line. @param {HTMLLIElement} item */
function addActions(item) {
  const mine = Number(item.dataset.authorId) === room.me.id;
  if (!mine && !room.can_moderate) return;
  const meta = /** @type {HTMLElement} */ (item.querySelector(".message-meta"));
  const actions = document.createElement("span");
  actions.className = "actions";
  const author = item.querySelector(".author")?.textContent ?? "";
  if (mine) {
    const edit = actionButton("Edit", () => openEditor(item));
    edit.setAttribute("aria-label", `Edit your message`);
    actions.append(edit);
  }
  const remove = actionButton("Delete", () => confirmDelete(item, actions));
  remove.setAttribute("aria-label", mine ? "Delete your message" : `Delete ${author}'s message`);
  actions.append(remove);
  meta.append(actions);
}

/** An inline "Delete this message?" with Delete / Cancel. @param {HTMLLIElement} item @param {HTMLElement} actions */
function confirmDelete(item, actions) {
  const saved = [...actions.childNodes];
  const question = document.createElement("span");
  question.className = "confirm";
  question.textContent = "Delete this message?";
  const error = document.createElement("span");
  error.className = "action-error";
  error.setAttribute("role", "alert");
  const yes = actionButton("Yes, delete", () => {
    yes.disabled = true;
    client.publish(room.topic, { delete: Number(item.dataset.id) }).then(
      () => applyDelete(Number(item.dataset.id)),
      (/** @type {Error} */ failure) => {
        yes.disabled = false;
        error.textContent = `Not deleted: ${failure.message}`;
      },
    );
  });
  const no = actionButton("Cancel", () => {
    actions.replaceChildren(...saved);
    /** @type {HTMLElement|undefined} */ (saved.find((n) => n instanceof HTMLButtonElement && n.textContent === "Delete"))?.focus();
  });
  actions.replaceChildren(question, " ", yes, " ", no, " ", error);
  no.focus();
}

/** Replace a message's text with an editor (Enter saves, Escape cancels). @param {HTMLLIElement} item */
function openEditor(item) {
  if (item.querySelector(".edit-form")) return;
  const id = Number(item.dataset.id);
  const body = /** @type {HTMLElement} */ (item.querySelector(".text"));
  const editor = document.createElement("form");
  editor.className = "edit-form";
  const label = document.createElement("label");
  label.className = "visually-hidden";
  label.htmlFor = `edit-${id}`;
  label.textContent = "Edit message";
  const area = document.createElement("textarea");
  area.id = `edit-${id}`;
  area.dir = "auto";
  area.rows = 2;
  area.value = shown.get(id)?.text ?? body.textContent ?? "";
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = "Save";
  const cancel = actionButton("Cancel", close);
  const error = document.createElement("p");
  error.className = "action-error";
  error.setAttribute("role", "alert");
  editor.append(label, area, save, " ", cancel, error);
  body.hidden = true;
  body.after(editor);
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);

  function close() {
    editor.remove();
    body.hidden = false;
    /** @type {HTMLElement|null} */ (item.querySelector(".actions button"))?.focus();
  }
  editor.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = area.value.trim();
    const length = [...text].length;
    if (!text) {
      error.textContent = "A message cannot be empty; use Delete to remove it.";
      return;
    }
    if (length > MAX_LENGTH) {
      error.textContent = tooLongText(length);
      return;
    }
    if (text === shown.get(id)?.text) {
      close();
      return;
    }
    save.disabled = true;
    error.textContent = "";
    client.publish(room.topic, { edit: id, text }).then(close, (/** @type {Error} */ failure) => {
      save.disabled = false;
      error.textContent = `Not saved: ${failure.message}`;
    });
  });
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      editor.requestSubmit();
    }
  });
}

// ---- who is online, who is typing --------------------------------------------

/** @param {{id: number|string, username: string}[]} users */
function renderPresence(users) {
  const sorted = [...users].sort((a, b) => a.username.localeCompare(b.username));
  presenceList.replaceChildren(
    ...sorted.map((user) => {
      if (!people.has(user.username)) people.set(user.username, { id: Number(user.id), username: user.username });
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

/** Who is typing: user id -> {username, timer}. */
const typists = new Map();

function showTyping() {
  const names = [...typists.values()].map((typist) => typist.username).sort();
  if (names.length === 0) typingNote.textContent = "";
  else if (names.length === 1) typingNote.textContent = `${names[0]} is typing…`;
  else if (names.length === 2) typingNote.textContent = `${names[0]} and ${names[1]} are typing…`;
  else typingNote.textContent = "Several people are typing…";
}

/** @param {{id: number, username: string}} user */
function startTyping(user) {
  if (user.id === room.me.id) return;
  const previous = typists.get(user.id);
  if (previous) clearTimeout(previous.timer);
  const timer = setTimeout(() => stopTyping(user.id), TYPING_SHOWN_MS);
  typists.set(user.id, { username: user.username, timer });
  showTyping();
}

/** @param {number} id */
function stopTyping(id) {
  const typist = typists.get(id);
  if (!typist) return;
  clearTimeout(typist.timer);
  typists.delete(id);
  showTyping();
}

client.addEventListener("message", (event) => {
  const frame = /** @type {CustomEvent} */ (event).detail;
  if (frame.type === "typing" && frame.topic === room.topic && frame.user) startTyping(frame.user);
});

let subscribed = false;
let typingSentAt = 0;

/** Tell the others this person is typing: at most once every 2 s, only while subscribed. */
function sendTyping() {
  const now = Date.now();
  if (!subscribed || client.state !== "open" || now - typingSentAt < TYPING_EVERY_MS) return;
  if (client.send({ type: "typing", topic: room.topic })) typingSentAt = now;
}

// ---- the subscription ------------------------------------------------------------

const subscription = client.subscribe(
  room.topic,
  (event) => {
    const data = /** @type {any} */ (event.data);
    if (typeof event.offset !== "number") return;
    if (data.kind === "message") insertMessage({ ...data, offset: event.offset }, { live: true });
    else if (data.kind === "message_edited") applyEdit(data);
    else if (data.kind === "message_deleted") applyDelete(data.id);
  },
  { since: room.last_offset, onPresence: renderPresence },
);
subscription.ready.then(
  () => {
    subscribed = true;
  },
  () => {
    subscribed = false;
  },
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
  if (state !== "open") {
    for (const id of [...typists.keys()]) stopTyping(id);
  }
  for (const draft of drafts.values()) if (draft.state === "pending") draft.status.textContent = pendingText();
  if (state === "open") {
    // A message that got no answer may have been stored all the same, and the
    // answer died with the old connection: send it again with its id (stored
    // once either way); the ack says which.
    for (const draft of drafts.values()) if (draft.state === "failed" && draft.code === "timeout") publish(draft);
  }
  if (state === "closed") {
    input.disabled = true;
    /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]")).disabled = true;
  }
});

// Every ack, also one that comes after the publish gave up waiting (`late`).
client.addEventListener("publishacked", (event) => {
  const { topic, offset, id } = /** @type {CustomEvent} */ (event).detail;
  const draft = topic === room.topic ? drafts.get(id) : undefined;
  if (draft) stored(draft, offset);
});

// ---- sending -----------------------------------------------------------------

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
  body.dir = "auto";
  renderRichText(body, text, { mentions: people.keys(), me: room.me.username });
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
  if (typeof offset !== "number" || messageAt(offset)) {
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

// ---- the send box: length, typing, mention autocomplete ---------------------------

/** @param {number} length */
function tooLongText(length) {
  const over = length - MAX_LENGTH;
  return `Too long to send: ${length.toLocaleString()} characters, the limit is ${MAX_LENGTH.toLocaleString()}. Remove ${over.toLocaleString()} ${over === 1 ? "character" : "characters"}.`;
}

/** The live counter under the box: shown near the limit, a refusal in words beyond it. */
function updateCounter() {
  const length = [...input.value.trim()].length;
  const over = length > MAX_LENGTH;
  input.setAttribute("aria-invalid", over ? "true" : "false");
  counter.classList.toggle("over", over);
  if (over) counter.textContent = tooLongText(length);
  else if (length >= MAX_LENGTH - 500) counter.textContent = `${length.toLocaleString()} / ${MAX_LENGTH.toLocaleString()} characters`;
  else counter.textContent = "";
}

/** @type {{start: number, query: string}|null} */
let mentionAt = null;
/** @type {{id: number, username: string}[]} */
let matches = [];
let active = 0;

function closeOptions() {
  mentionAt = null;
  matches = [];
  options.hidden = true;
  options.replaceChildren();
  input.removeAttribute("aria-activedescendant");
}

function renderOptions() {
  options.replaceChildren(
    ...matches.map((person, index) => {
      const option = document.createElement("li");
      option.id = `mention-option-${index}`;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", index === active ? "true" : "false");
      option.textContent = `@${person.username}`;
      option.addEventListener("mousedown", (event) => {
        event.preventDefault(); // keep the focus in the box
        choose(index);
      });
      return option;
    }),
  );
  options.hidden = matches.length === 0;
  if (matches.length) input.setAttribute("aria-activedescendant", `mention-option-${active}`);
  else input.removeAttribute("aria-activedescendant");
}

/** Offer the people whose name fits the `@name` before the caret. */
function updateOptions() {
  const query = mentionQuery(input.value, input.selectionStart ?? input.value.length);
  if (!query) {
    closeOptions();
    return;
  }
  const candidates = [...people.values()].filter((person) => person.username !== room.me.username);
  mentionAt = query;
  matches = mentionMatches(candidates, query.query);
  // A name typed in full needs no offer (and Enter then sends, as without the list).
  if (matches.length === 1 && matches[0].username === query.query) matches = [];
  active = 0;
  renderOptions();
}

/** Put `@username ` in place of what was typed after the `@`. @param {number} index */
function choose(index) {
  const person = matches[index];
  if (!person || !mentionAt) return;
  const caret = input.selectionStart ?? input.value.length;
  const before = input.value.slice(0, mentionAt.start);
  const after = input.value.slice(caret);
  const inserted = `@${person.username} `;
  input.value = before + inserted + after.replace(/^ /, "");
  const position = before.length + inserted.length;
  input.setSelectionRange(position, position);
  closeOptions();
  updateCounter();
  input.focus();
}

showPresenceNote();

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  const length = [...text].length;
  if (length > MAX_LENGTH) {
    updateCounter(); // the refusal in words; the text stays in the box
    input.focus();
    return;
  }
  input.value = "";
  updateCounter();
  closeOptions();
  send(text);
  input.focus();
});
input.addEventListener("keydown", (event) => {
  if (!options.hidden && matches.length) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
      renderOptions();
      return;
    }
    if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      choose(active);
      return;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      closeOptions();
      return;
    }
  }
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});
input.addEventListener("input", () => {
  updateCounter();
  updateOptions();
  if (input.value.trim()) sendTyping();
});
input.addEventListener("click", updateOptions);
input.addEventListener("blur", () => setTimeout(closeOptions, 100));

updateSeparators();
setHasMore(hasMore);
scrollToEnd();
