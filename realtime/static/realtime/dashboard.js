// @ts-check
/**
 * dashboard.js: the staff dashboard. Subscribes to `dashboard` (one `stats`
 * event a second: connections, users_online, messages_per_second,
 * delivery_lag_ms, and `totals`, the machine's metric counters) and draws the
 * last five minutes with uPlot (vendored,
 * MIT, realtime/static/realtime/vendor/). The charts start with the server's
 * samples of the last five minutes (GET /api/dashboard/history/), so a page
 * opened (or reloaded) now shows the past; the x axis is always a five-minute
 * window ending now, also while there is nothing to draw. The announcement
 * form posts over REST (POST /api/publish/), so the page and its charts stay.
 * @module dashboard
 */
import { api, client } from "./page.js";
import uPlot from "./vendor/uPlot.esm.js";

const WINDOW_SECONDS = 300;

/** Columns: time (s), connections, users online, messages per second. */
/** @type {number[][]} */
const data = [[], [], [], []];

const areas = {
  connections: /** @type {HTMLElement} */ (document.querySelector('[data-chart="connections"]')),
  messages: /** @type {HTMLElement} */ (document.querySelector('[data-chart="messages"]')),
};

/** @param {HTMLElement} area */
function size(area) {
  return { width: Math.max(240, area.clientWidth), height: 220 };
}

/** The x scale: five minutes ending at the newest point (or now, with no points yet). */
function timeRange(/** @type {any} */ _u, /** @type {number|null} */ _min, /** @type {number|null} */ max) {
  const end = typeof max === "number" && Number.isFinite(max) ? max : Date.now() / 1000;
  return /** @type {[number, number]} */ ([end - WINDOW_SECONDS, end]);
}

const axes = [{ stroke: "#5b6475", grid: { stroke: "#eef0f4" } }, { stroke: "#5b6475", grid: { stroke: "#eef0f4" } }];

/** @param {number} seconds */
function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/**
 * Say what a chart shows, for screen readers (the canvas is an image) and for
 * tests: the time window of its x axis and how many points it has. Run by
 * uPlot whenever a scale is set, the first (empty) frame included.
 * @param {any} chart
 */
function describe(chart) {
  const area = /** @type {HTMLElement|null} */ (chart.root.parentElement);
  const { min, max } = chart.scales.x;
  if (!area || typeof min !== "number" || typeof max !== "number") return;
  area.dataset.points = String(data[0].length);
  area.dataset.from = data[0].length ? String(data[0][0]) : "";
  area.dataset.xMin = String(min);
  area.dataset.xMax = String(max);
  const summary = `${data[0].length} points, from ${clock(min)} to ${clock(max)}`;
  if (area.getAttribute("aria-description") !== summary) area.setAttribute("aria-description", summary);
}

/** uPlot hooks shared by both charts. */
const hooks = { setScale: [(/** @type {any} */ chart, /** @type {string} */ key) => key === "x" && describe(chart)] };

const connectionsChart = new uPlot(
  {
    ...size(areas.connections),
    scales: { x: { time: true, range: timeRange }, y: { range: (_u, _min, max) => [0, Math.max(4, Math.ceil(max * 1.2))] } },
    series: [
      {},
      { label: "Connections", stroke: "#2456d6", width: 2, points: { show: false } },
      { label: "Users online", stroke: "#1a7f37", width: 2, dash: [6, 4], points: { show: false } },
    ],
    axes,
    hooks,
    legend: { show: true, live: false },
  },
  [data[0], data[1], data[2]],
  areas.connections,
);

const messagesChart = new uPlot(
  {
    ...size(areas.messages),
    scales: { x: { time: true, range: timeRange }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.2)] } },
    series: [
      {},
      { label: "Messages/s", stroke: "#b3261e", fill: "rgba(179, 38, 30, 0.12)", width: 2, points: { show: false } },
    ],
    axes,
    hooks,
    legend: { show: true, live: false },
  },
  [data[0], data[3]],
  areas.messages,
);

const readout = {
  connections: document.querySelector('[data-stat="connections"]'),
  users_online: document.querySelector('[data-stat="users_online"]'),
  messages_per_second: document.querySelector('[data-stat="messages_per_second"]'),
  delivery_lag_ms: document.querySelector('[data-stat="delivery_lag_ms"]'),
};

/** Add one sample in time order (history and live events may overlap). @param {any} stats @param {number} t */
function insertSample(stats, t) {
  let at = data[0].length;
  while (at > 0 && data[0][at - 1] >= t) at -= 1;
  const second = Math.floor(t);
  if (at < data[0].length && Math.floor(data[0][at]) === second) return; // that second is drawn
  if (at > 0 && Math.floor(data[0][at - 1]) === second) return;
  data[0].splice(at, 0, t);
  data[1].splice(at, 0, Number(stats.connections) || 0);
  data[2].splice(at, 0, Number(stats.users_online) || 0);
  data[3].splice(at, 0, Number(stats.messages_per_second) || 0);
  const newest = data[0][data[0].length - 1];
  while (data[0].length && data[0][0] < newest - WINDOW_SECONDS) for (const column of data) column.shift();
}

function draw() {
  connectionsChart.setData([data[0], data[1], data[2]]);
  messagesChart.setData([data[0], data[3]]);
}

/** @param {any} stats @param {string} ts */
function addPoint(stats, ts) {
  const t = Date.parse(ts) / 1000 || Date.now() / 1000;
  insertSample(stats, t);
  draw();
  for (const [key, element] of Object.entries(readout)) {
    if (!element || stats[key] === undefined) continue;
    element.textContent = key === "delivery_lag_ms" ? `${stats[key]} ms` : String(stats[key]);
  }
  const totals = stats.totals || {};
  for (const element of document.querySelectorAll("[data-total]")) {
    const value = totals[/** @type {HTMLElement} */ (element).dataset.total || ""];
    if (typeof value === "number") element.textContent = Math.round(value).toLocaleString("en");
  }
}

/** The last five minutes as the server kept them, merged under the live points. */
async function loadHistory() {
  try {
    /** @type {any[]} */
    const samples = await api("/api/dashboard/history/");
    for (const sample of samples) {
      const t = Date.parse(sample.ts) / 1000;
      if (Number.isFinite(t)) insertSample(sample, t);
    }
    draw();
  } catch (error) {
    console.error("could not load the dashboard's history", error);
  }
}
loadHistory();

const subscription = client.subscribe("dashboard", (event) => {
  if (event.data.kind === "stats") addPoint(event.data, event.ts);
});
subscription.ready.catch((error) => {
  for (const element of Object.values(readout)) if (element) element.textContent = "unavailable";
  console.error("dashboard refused", error);
});

const observer = new ResizeObserver(() => {
  connectionsChart.setSize(size(areas.connections));
  messagesChart.setSize(size(areas.messages));
});
observer.observe(areas.connections);
observer.observe(areas.messages);

// ---- the announcement form: sent over REST, the page stays --------------------

const form = /** @type {HTMLFormElement|null} */ (document.querySelector("[data-announce-form]"));
if (form) {
  const field = /** @type {HTMLTextAreaElement} */ (form.querySelector("textarea"));
  const button = /** @type {HTMLButtonElement} */ (form.querySelector('button[type="submit"]'));
  const problem = /** @type {HTMLElement} */ (form.querySelector("[data-announce-error]"));
  const done = /** @type {HTMLElement} */ (form.querySelector("[data-announce-status]"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    done.textContent = "";
    const text = field.value.trim();
    if (!text) {
      problem.textContent = "This field is required.";
      field.focus();
      return;
    }
    button.disabled = true;
    try {
      await api("/api/publish/", { method: "POST", body: { topic: "broadcast", data: { text } } });
      field.value = "";
      done.textContent = "Announcement sent.";
    } catch (error) {
      const data = /** @type {any} */ (error).data || {};
      const reasons = [data.data, data.topic, data.non_field_errors, data.detail].flat().filter(Boolean);
      problem.textContent = reasons.length ? reasons.join(" ") : `Not sent: ${/** @type {Error} */ (error).message}`;
    } finally {
      button.disabled = false;
    }
  });
}
