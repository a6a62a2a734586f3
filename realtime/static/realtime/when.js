// @ts-check
/**
 * when.js: how the room shows moments, in the reader's time zone: a day's
 * separator ("Today", "Yesterday", else the full date), a message's time
 * (the time alone today, with the date otherwise) and its full date and time
 * (the `title`, on hover). Pure functions of a date and "now" (Node-tested).
 * @module when
 */

/** A local calendar day as a string, for comparing days. @param {Date} date */
export function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
}

/** @param {Date} date @param {number} days */
function addDays(date, days) {
  const copy = new Date(date.getTime());
  copy.setDate(copy.getDate() + days);
  return copy;
}

/**
 * The separator above a day's first message.
 * @param {Date} date
 * @param {Date} [now]
 */
export function dayLabel(date, now = new Date()) {
  if (dayKey(date) === dayKey(now)) return "Today";
  if (dayKey(date) === dayKey(addDays(now, -1))) return "Yesterday";
  return date.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

/**
 * A message's time: "14:05" today, "3 Mar, 14:05" earlier this year, with the year before.
 * @param {Date} date
 * @param {Date} [now]
 */
export function timeLabel(date, now = new Date()) {
  /** @type {Intl.DateTimeFormatOptions} */
  const time = { hour: "2-digit", minute: "2-digit" };
  if (dayKey(date) === dayKey(now)) return date.toLocaleTimeString([], time);
  if (date.getFullYear() === now.getFullYear()) {
    return date.toLocaleString([], { month: "short", day: "numeric", ...time });
  }
  return date.toLocaleString([], { year: "numeric", month: "short", day: "numeric", ...time });
}

/** The full date and time, for a `title`. @param {Date} date */
export function fullLabel(date) {
  return date.toLocaleString([], { dateStyle: "full", timeStyle: "medium" });
}
