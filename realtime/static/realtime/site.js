// @ts-check
/**
 * site.js: the widgets of every page. Site-wide announcements (`broadcast`,
 * shown live as dismissible banners) and, for a signed-in user, the
 * notifications bell (`user:<id>`): live unread count, the list, mark as read
 * (the `kind: read` event brings the user's other tabs along).
 * @module site
 */
import { isLocalPath } from "./links.js";
import { api, client, formatTime, readJson } from "./page.js";

// ---- announcements --------------------------------------------------------

const banners = document.querySelector("[data-announcements]");

/** @param {{id: number, text: string}} data */
function showAnnouncement(data) {
  if (!banners || banners.querySelector(`[data-announcement-id="${Number(data.id)}"]`)) return;
  const banner = document.createElement("div");
  banner.className = "announcement";
  banner.setAttribute("role", "status");
  banner.dataset.announcementId = String(Number(data.id));
  const label = document.createElement("strong");
  label.textContent = "Announcement: ";
  const text = document.createElement("span");
  text.className = "announcement-text";
  text.textContent = data.text;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "dismiss";
  dismiss.setAttribute("aria-label", "Dismiss announcement");
  dismiss.textContent = "×";
  dismiss.addEventListener("click", () => banner.remove());
  banner.append(label, text, dismiss);
  banners.append(banner);
}

// Only announcements made from now on: subscribing without `since` starts at the latest.
client.subscribe("broadcast", (event) => {
  if (event.data.kind === "announcement") showAnnouncement(/** @type {any} */ (event.data));
});

// ---- notifications bell ---------------------------------------------------

const userId = readJson("realtime-user-id");
const bell = /** @type {HTMLDetailsElement|null} */ (document.querySelector("[data-bell]"));

if (userId !== null && bell) setUpBell(userId, bell);

/**
 * @typedef {{id: number, title: string, body: string, url: string, created_at: string, read_at: string|null}} Note
 */

/**
 * @param {number} userId
 * @param {HTMLDetailsElement} bell
 */
function setUpBell(userId, bell) {
  const countElement = /** @type {HTMLElement} */ (bell.querySelector("[data-bell-count]"));
  const list = /** @type {HTMLElement} */ (bell.querySelector("[data-bell-list]"));
  const empty = /** @type {HTMLElement} */ (bell.querySelector("[data-bell-empty]"));
  const readAll = /** @type {HTMLButtonElement} */ (bell.querySelector("[data-bell-read-all]"));
  /** @type {Map<number, Note>} */
  const notes = new Map();
  let unread = 0;
  let loaded = false;
  /** @type {any[]} events that arrived while the list was loading */
  let early = [];

  function render() {
    countElement.textContent = String(unread);
    countElement.classList.toggle("zero", unread === 0);
    readAll.disabled = unread === 0;
    empty.hidden = notes.size > 0;
    const sorted = Array.from(notes.values()).sort((a, b) => b.id - a.id);
    list.replaceChildren(...sorted.slice(0, 30).map(renderNote));
  }

  /** @param {Note} note */
  function renderNote(note) {
    const item = document.createElement("li");
    item.className = note.read_at ? "note" : "note unread";
    item.dataset.notificationId = String(note.id);
    const title = document.createElement(isLocalPath(note.url) ? "a" : "span");
    title.className = "note-title";
    title.textContent = note.title;
    if (title instanceof HTMLAnchorElement) title.href = note.url;
    item.append(title);
    if (note.body) {
      const body = document.createElement("p");
      body.className = "note-body";
      body.textContent = note.body;
      item.append(body);
    }
    const meta = document.createElement("div");
    meta.className = "note-meta";
    const time = document.createElement("time");
    time.dateTime = note.created_at;
    time.textContent = formatTime(note.created_at);
    meta.append(time);
    if (!note.read_at) {
      const mark = document.createElement("button");
      mark.type = "button";
      mark.className = "link-button";
      mark.textContent = "Mark as read";
      mark.setAttribute("aria-label", `Mark “${note.title}” as read`);
      mark.addEventListener("click", () => markRead([note.id]));
      meta.append(mark);
    }
    item.append(meta);
    return item;
  }

  /** @param {number[]} ids */
  function applyRead(ids) {
    for (const id of ids) {
      const note = notes.get(id);
      if (note && note.read_at) continue; // already counted as read
      if (note) note.read_at = new Date().toISOString();
      unread = Math.max(0, unread - 1); // ids in a `read` event were unread until then
    }
  }

  /** @param {any} event */
  function apply(event) {
    const data = event.data;
    if (data.kind === "notification") {
      if (notes.has(data.id)) return;
      notes.set(data.id, { ...data, read_at: null });
      unread += 1;
    } else if (data.kind === "read" && Array.isArray(data.ids)) {
      applyRead(data.ids);
    }
  }

  /** @param {number[]} ids */
  async function markRead(ids) {
    if (!ids.length) return;
    try {
      await api("/api/notifications/read/", { method: "POST", body: { ids } });
      // The `kind: read` event updates this tab and the others.
    } catch (error) {
      console.error("mark as read failed", error);
    }
  }

  readAll.addEventListener("click", () => {
    markRead(Array.from(notes.values()).filter((n) => !n.read_at).map((n) => n.id));
  });

  async function load() {
    loaded = false;
    early = [];
    try {
      const page = await api("/api/notifications/?limit=30");
      notes.clear();
      for (const note of page.results) notes.set(note.id, note);
      unread = page.unread;
    } catch (error) {
      console.error("could not load notifications", error);
    }
    loaded = true;
    for (const event of early) apply(event);
    early = [];
    render();
  }

  const topic = `user:${userId}`;
  const subscription = client.subscribe(topic, (event) => {
    if (!loaded) {
      early.push(event);
      return;
    }
    apply(event);
    render();
  });
  client.addEventListener("resync", (event) => {
    if (/** @type {CustomEvent} */ (event).detail.topic === topic) load();
  });
  // Subscribe first, then load: whatever happens in between arrives as events.
  subscription.ready.then(load, load);

  // A connection that stays closed (an administrator, too many tabs) brings no
  // more notifications: say so in the list, next to the header's "Reload".
  const stale = /** @type {HTMLElement|null} */ (bell.querySelector("[data-bell-stale]"));
  client.addEventListener("statechange", (event) => {
    if (stale) stale.hidden = /** @type {CustomEvent} */ (event).detail.state !== "closed";
  });

  // Close the list with Escape or a click elsewhere.
  document.addEventListener("click", (event) => {
    if (bell.open && !bell.contains(/** @type {Node} */ (event.target))) bell.open = false;
  });
  bell.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && bell.open) {
      bell.open = false;
      /** @type {HTMLElement} */ (bell.querySelector("summary")).focus();
    }
  });
}
