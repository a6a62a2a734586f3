// @ts-check
/**
 * dashboard.js: the staff dashboard. Subscribes to `dashboard` (one `stats`
 * event a second: connections, users_online, messages_per_second,
 * delivery_lag_ms, and `totals`, the machine's metric counters) and draws the
 * last five minutes with uPlot (vendored,
 * MIT, realtime/static/realtime/vendor/).
 * @module dashboard
 */
import { client } from "./page.js";
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

const axes = [{ stroke: "#5b6475", grid: { stroke: "#eef0f4" } }, { stroke: "#5b6475", grid: { stroke: "#eef0f4" } }];

const connectionsChart = new uPlot(
  {
    ...size(areas.connections),
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(4, Math.ceil(max * 1.2))] } },
    series: [
      {},
      { label: "Connections", stroke: "#2456d6", width: 2, points: { show: false } },
      { label: "Users online", stroke: "#1a7f37", width: 2, dash: [6, 4], points: { show: false } },
    ],
    axes,
    legend: { show: true, live: false },
  },
  [data[0], data[1], data[2]],
  areas.connections,
);

const messagesChart = new uPlot(
  {
    ...size(areas.messages),
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.2)] } },
    series: [
      {},
      { label: "Messages/s", stroke: "#b3261e", fill: "rgba(179, 38, 30, 0.12)", width: 2, points: { show: false } },
    ],
    axes,
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

/** @param {any} stats @param {string} ts */
function addPoint(stats, ts) {
  const t = Date.parse(ts) / 1000 || Date.now() / 1000;
  data[0].push(t);
  data[1].push(Number(stats.connections) || 0);
  data[2].push(Number(stats.users_online) || 0);
  data[3].push(Number(stats.messages_per_second) || 0);
  while (data[0].length && data[0][0] < t - WINDOW_SECONDS) for (const column of data) column.shift();
  connectionsChart.setData([data[0], data[1], data[2]]);
  messagesChart.setData([data[0], data[3]]);
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
