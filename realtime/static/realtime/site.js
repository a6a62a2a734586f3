// @ts-check
/**
 * site.js: the widgets of every page. Site-wide announcements (`broadcast`:
 * the recent ones on load, new ones live, as banners dismissible for good)
 * and, for a signed-in user, the notifications bell (`user:<id>`): live
 * unread count, the list, mark as read (the `kind: read` event brings the
 * user's other tabs along), new ones announced politely to screen readers.
 * Opening a notification marks it read; a mention in the room in view is
 * read as it arrives while the page is visible.
 * @module site
 */
import { isLocalPath } from "./links.js";
import { api, client, formatTime, readJson } from "./page.js";

// ---- announcements --------------------------------------------------------
//
// The recent ones (GET /api/announcements/: the last week's newest few) are
// shown on load, then new ones live. Dismissing one hides it for good: for a
// signed-in user on the server (POST /api/announcements/<id>/dismiss/), for an
// anonymous visitor, who has no account, in this browser's localStorage.

const banners = document.querySelector("[data-announcements]");
const signedIn = readJson("realtime-user-id") !== null;
const DISMISSED_KEY = "realtime:dismissed-announcements";

/** Ids an anonymous visitor dismissed in this browser. @returns {number[]} */
function dismissedHere() {
  try {
    const ids = JSON.parse(localStorage.getItem(DISMISSED_KEY) || "[]");
    return Array.isArray(ids) ? ids.filter((id) => Number.isInteger(id)) : [];
  } catch {
    return [];
  }
}

/** @param {number} id */
function dismiss(id) {
  if (signedIn) {
    api(`/api/announcements/${id}/dismiss/`, { method: "POST" }).catch((error) =>
      console.error("could not dismiss the announcement", error),
    );
    return;
  }
  try {
    // The newest 50 are plenty: older ones are no longer shown on load.
    const ids = [...dismissedHere().filter((other) => other !== id), id].slice(-50);
    localStorage.setItem(DISMISSED_KEY, JSON.stringify(ids));
  } catch {
    // Storage refused (private mode, full): dismissed for this page only.
  }
}

/** @param {{id: number, text: string}} data */
function showAnnouncement(data) {
  const id = Number(data.id);
  if (!banners || banners.querySelector(`[data-announcement-id="${id}"]`)) return;
  const banner = document.createElement("div");
  banner.className = "announcement";
  banner.setAttribute("role", "status");
  banner.dataset.announcementId = String(id);
  const label = document.createElement("strong");
  label.textContent = "Announcement: ";
  const text = document.createElement("span");
  text.className = "announcement-text";
  text.textContent = data.text;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "dismiss";
  button.setAttribute("aria-label", "Dismiss announcement");
  button.textContent = "×";
  button.addEventListener("click", () => {
    banner.remove();
    dismiss(id);
  });
  banner.append(label, text, button);
  // In the order they were made, whichever came first: the load or the event.
  const later = Array.from(banners.children).find(
    (other) => Number(/** @type {HTMLElement} */ (other).dataset.announcementId) > id,
  );
  banners.insertBefore(banner, later || null);
}

async function loadAnnouncements() {
  try {
    /** @type {{id: number, text: string}[]} */
    const recent = await api("/api/announcements/");
    const dismissed = signedIn ? [] : dismissedHere();
    for (const data of recent.reverse()) if (!dismissed.includes(data.id)) showAnnouncement(data);
  } catch (error) {
    console.error("could not load the announcements", error);
  }
}

// New ones live (subscribing without `since` starts at the latest); the recent ones over REST.
client.subscribe("broadcast", (event) => {
  if (event.data.kind === "announcement") showAnnouncement(/** @type {any} */ (event.data));
});
loadAnnouncements();

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
  // Outside the (closed) panel, so that screen readers hear new notifications politely.
  const live = /** @type {HTMLElement|null} */ (document.querySelector("[data-bell-live]"));
  // A room page (its data is in the page): mentions in it are read while it is in view.
  const roomPage = document.getElementById("room-data") !== null;
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
    if (title instanceof HTMLAnchorElement) {
      title.href = note.url;
      title.addEventListener("click", (event) => openNote(event, note));
    }
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

  /**
   * A click on a notification: it is read, then its page opens (at the message).
   * @param {MouseEvent} event
   * @param {Note} note
   */
  async function openNote(event, note) {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      if (!note.read_at) markRead([note.id]); // opened in another tab or window
      return;
    }
    event.preventDefault();
    bell.open = false;
    // Wait for the server (briefly), so the page that opens counts it as read.
    if (!note.read_at) await Promise.race([markRead([note.id]), new Promise((r) => setTimeout(r, 2000))]);
    const target = new URL(note.url, location.href);
    const samePage = target.pathname === location.pathname && target.search === location.search;
    if (samePage && target.hash && target.hash === location.hash) {
      window.dispatchEvent(new HashChangeEvent("hashchange")); // show the message again
    } else {
      location.assign(target.href); // another page, or only the hash: a hashchange
    }
  }

  /** Is this page a room, and the notification about it (a mention in the open room)? @param {Note} note */
  function aboutThisRoom(note) {
    if (!roomPage || !isLocalPath(note.url)) return false;
    return new URL(note.url, location.href).pathname === location.pathname;
  }

  /** Mentions in the room in view are read: the person is looking at it. */
  function readWhatIsInView() {
    if (document.visibilityState !== "visible") return;
    const ids = Array.from(notes.values())
      .filter((note) => !note.read_at && aboutThisRoom(note))
      .map((note) => note.id);
    markRead(ids);
  }
  document.addEventListener("visibilitychange", readWhatIsInView);

  /** Say `text` in the polite live region (emptied first, so a repeat is heard again). @param {string} text */
  function announce(text) {
    if (!live) return;
    live.textContent = "";
    setTimeout(() => {
      live.textContent = text;
    }, 100);
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
      if (loaded) announce(`New notification: ${data.title}`);
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
    list.setAttribute("aria-busy", "true");
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
    list.setAttribute("aria-busy", "false");
    readWhatIsInView();
  }

  const topic = `user:${userId}`;
  const subscription = client.subscribe(topic, (event) => {
    if (!loaded) {
      early.push(event);
      return;
    }
    apply(event);
    render();
    if (event.data.kind === "notification") readWhatIsInView();
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
