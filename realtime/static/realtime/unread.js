// @ts-check
/**
 * unread.js: a room page's read state. While the page is open and visible
 * (`document.visibilityState`), the room is marked read on the server up to
 * the newest message shown (POST /api/rooms/<slug>/read/), again whenever new
 * messages appear and when the tab comes back into view; a hidden tab marks
 * nothing, so what arrives meanwhile stays unread. A link to
 * `/rooms/<slug>/#message-<id>` (a mention's notification) scrolls to that
 * message and highlights it when it is loaded.
 *
 * It watches the message list in the DOM rather than the room's topic, so it
 * needs nothing from room.js but to be imported: `import "./unread.js";`.
 * @module unread
 */
import { api, readJson } from "./page.js";

/** Wait this long after a message appears before telling the server (bursts make one call). */
const MARK_DELAY_MS = 400;
/** The localStorage key whose changes tell this browser's other tabs a room was read. */
export const READ_KEY = "realtime:room-read";

/** @type {{slug: string} | null} */
const room = readJson("room-data");
const list = /** @type {HTMLElement|null} */ (document.querySelector("[data-messages]"));

if (room && list) setUp(room.slug, list);

/**
 * @param {string} slug
 * @param {HTMLElement} list
 */
function setUp(slug, list) {
  let marked = 0; // the offset the server has (or is being sent)
  /** @type {any} */
  let timer = null;

  function newestShown() {
    let newest = 0;
    for (const item of list.querySelectorAll(":scope > li[data-offset]")) {
      newest = Math.max(newest, Number(/** @type {HTMLElement} */ (item).dataset.offset) || 0);
    }
    return newest;
  }

  async function markRead() {
    timer = null;
    if (document.visibilityState !== "visible") return;
    const offset = newestShown();
    if (offset <= marked) return;
    const before = marked;
    marked = offset;
    try {
      await api(`/api/rooms/${encodeURIComponent(slug)}/read/`, { method: "POST", body: { offset } });
      tellOtherTabs(offset);
    } catch (error) {
      if (marked === offset) marked = before; // try again with the next message or visit
      console.error("could not mark the room read", error);
    }
  }

  /** The rooms list in this browser's other tabs updates its counts (rooms.js listens). @param {number} offset */
  function tellOtherTabs(offset) {
    try {
      localStorage.setItem(READ_KEY, JSON.stringify({ slug, offset, at: Date.now() }));
    } catch {
      // No storage: those tabs update when they come back into view.
    }
  }

  function soon() {
    if (timer === null) timer = setTimeout(markRead, MARK_DELAY_MS);
  }

  new MutationObserver(soon).observe(list, { childList: true });
  document.addEventListener("visibilitychange", soon);
  window.addEventListener("focus", soon);

  /** Scroll to and highlight the message named by `#message-<id>`, if it is loaded. */
  function showTarget() {
    const match = /^#message-(\d+)$/.exec(location.hash);
    if (!match) return;
    const item = /** @type {HTMLElement|null} */ (list.querySelector(`:scope > li[data-id="${match[1]}"]`));
    if (!item) return;
    for (const old of list.querySelectorAll(":scope > .message-target")) old.classList.remove("message-target");
    item.classList.add("message-target");
    item.scrollIntoView({ block: "center" });
  }

  window.addEventListener("hashchange", showTarget);
  // After room.js has run (it scrolls to the newest message when it starts).
  setTimeout(() => {
    showTarget();
    markRead();
  }, 0);
}
