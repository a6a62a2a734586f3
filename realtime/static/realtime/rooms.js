// @ts-check
/**
 * rooms.js: the rooms list. Each room shows how many of its messages the
 * signed-in user has not read (kept on the server per user: GET /api/rooms/),
 * and the tab title shows the total, e.g. "(3) Rooms · Realtime". Both move
 * live: the page follows the listed rooms' topics (at most `live_limit` of
 * them, under the socket's subscription cap) from the newest offset it was
 * rendered with, counting each new message written by someone else once.
 * When a room is read in another tab of this browser (unread.js says so
 * through localStorage), when the tab comes back into view (the user may have
 * read a room elsewhere) or after a gap, the counts are fetched again.
 * @module rooms
 */
import { api, client, readJson } from "./page.js";

/** @type {{me: number, live_limit: number}} */
const data = readJson("rooms-data", { me: 0, live_limit: 0 });
const items = /** @type {HTMLElement[]} */ (Array.from(document.querySelectorAll("[data-room-list] > li[data-slug]")));

/** @typedef {{item: HTMLElement, unread: number, lastOffset: number}} RoomState */
/** @type {Map<string, RoomState>} slug -> what the page knows */
const rooms = new Map();
for (const item of items) {
  const count = item.querySelector("[data-unread-count]");
  rooms.set(item.dataset.slug || "", {
    item,
    unread: Number(count ? count.textContent : 0) || 0,
    lastOffset: Number(item.dataset.lastOffset) || 0,
  });
}

const baseTitle = document.title.replace(/^\(\d+\)\s+/, "");

function render() {
  let total = 0;
  for (const room of rooms.values()) {
    total += room.unread;
    const badge = /** @type {HTMLElement|null} */ (room.item.querySelector("[data-unread-badge]"));
    const count = room.item.querySelector("[data-unread-count]");
    if (count && count.textContent !== String(room.unread)) count.textContent = String(room.unread);
    if (badge) badge.hidden = room.unread === 0;
    room.item.classList.toggle("has-unread", room.unread > 0);
  }
  document.title = total > 0 ? `(${total}) ${baseTitle}` : baseTitle;
}

/** Ids of the messages this page counted as unread, per room (a deletion uncounts them). */
const countedIds = new Map();

/** @param {string} slug @param {any} event */
function onEvent(slug, event) {
  const room = rooms.get(slug);
  if (!room || typeof event.offset !== "number") return;
  if (event.offset <= room.lastOffset) return; // counted already (rendered or fetched)
  room.lastOffset = event.offset;
  const counted = countedIds.get(slug) || new Set();
  countedIds.set(slug, counted);
  if (event.data.kind === "message_deleted" && counted.delete(event.data.id)) {
    room.unread = Math.max(0, room.unread - 1); // a message counted here is gone
    render();
    return;
  }
  if (event.data.kind !== "message") return;
  if (event.data.author && event.data.author.id === data.me) return; // one's own
  counted.add(event.data.id);
  room.unread += 1;
  render();
}

/** The server's counts replace the page's (another tab may have read a room). */
async function refresh() {
  try {
    /** @type {{slug: string, unread: number, last_offset: number}[]} */
    const list = await api("/api/rooms/");
    for (const entry of list) {
      const room = rooms.get(entry.slug);
      if (!room) continue;
      room.unread = entry.unread;
      room.lastOffset = Math.max(room.lastOffset, entry.last_offset);
    }
    render();
  } catch (error) {
    console.error("could not refresh the unread counts", error);
  }
}

const followed = new Set();
for (const [slug, room] of Array.from(rooms).slice(0, data.live_limit)) {
  const topic = `room:${slug}`;
  followed.add(topic);
  const subscription = client.subscribe(topic, (event) => onEvent(slug, event), {
    since: room.lastOffset,
    // Counting unread messages is not being in the room: nobody sees this page as "online".
    presence: false,
  });
  subscription.ready.catch(() => {}); // a room made private meanwhile: its count stays as rendered
}
client.addEventListener("resync", (event) => {
  if (followed.has(/** @type {CustomEvent} */ (event).detail.topic)) refresh();
});
window.addEventListener("storage", (event) => {
  if (event.key === "realtime:room-read") refresh(); // unread.js's READ_KEY
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
});
// Back/forward cache: the page comes back as it was left, counts included.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) refresh();
});
render();
