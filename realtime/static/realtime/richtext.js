// @ts-check
/**
 * richtext.js: a message's text as the room shows it: `inline code`, links
 * for http(s) URLs, and `@mentions` of users that exist, everything else
 * plain text. `tokenize` is pure (tested in Node); `renderRichText` builds
 * DOM nodes with createElement and textContent only, never HTML from text.
 * @module richtext
 */

/** The server's mention pattern (realtime/chat/mentions.py), in Unicode terms. */
const MENTION = /(?<![\p{L}\p{N}_@])@([\p{L}\p{N}_.@+-]{1,150})/u;
/** An http or https URL up to whitespace or characters that never end one in a chat line. */
const URL_START = /(?<![\p{L}\p{N}_])https?:\/\/[^\s<>"'`]+/iu;
/** Punctuation after a URL that belongs to the sentence, not the URL. */
const TRAILING = /[.,;:!?'"*_~]+$/;

/**
 * @typedef {{type: "text", text: string}
 *   | {type: "code", text: string}
 *   | {type: "link", text: string, href: string}
 *   | {type: "mention", text: string, username: string}} Token
 */

/**
 * A URL's form fit for an href: only http and https, else null.
 * @param {string} text
 * @returns {string|null}
 */
export function safeHref(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (!url.hostname) return null;
  return url.href;
}

/**
 * The URL at the start of `candidate` without the sentence's punctuation and
 * without a closing bracket that it did not open ("(see https://x.org/a)").
 * @param {string} candidate
 */
function trimUrl(candidate) {
  let url = candidate;
  for (;;) {
    const before = url;
    url = url.replace(TRAILING, "");
    for (const [open, close] of [["(", ")"], ["[", "]"], ["{", "}"]]) {
      if (url.endsWith(close) && url.split(close).length > url.split(open).length) url = url.slice(0, -1);
    }
    if (url === before) return url;
  }
}

/**
 * Links and mentions in a run of text outside code.
 * @param {string} text
 * @param {Set<string>} mentions  usernames that are real users
 * @param {Token[]} tokens
 */
function scanProse(text, mentions, tokens) {
  let rest = text;
  while (rest) {
    const url = URL_START.exec(rest);
    const mention = MENTION.exec(rest);
    if (url && (!mention || url.index <= mention.index)) {
      const trimmed = trimUrl(url[0]);
      const href = safeHref(trimmed);
      if (href) {
        pushText(tokens, rest.slice(0, url.index));
        tokens.push({ type: "link", text: trimmed, href });
        rest = rest.slice(url.index + trimmed.length);
      } else {
        const end = url.index + url[0].length;
        pushText(tokens, rest.slice(0, end));
        rest = rest.slice(end);
      }
    } else if (mention) {
      const name = mention[1].replace(/\.+$/, "");
      const end = mention.index + 1 + name.length;
      if (name && mentions.has(name)) {
        pushText(tokens, rest.slice(0, mention.index));
        tokens.push({ type: "mention", text: `@${name}`, username: name });
      } else {
        pushText(tokens, rest.slice(0, end)); // not a user: plain text
      }
      rest = rest.slice(end);
    } else {
      pushText(tokens, rest);
      return;
    }
  }
}

/** @param {Token[]} tokens @param {string} text */
function pushText(tokens, text) {
  if (!text) return;
  const last = tokens[tokens.length - 1];
  if (last && last.type === "text") last.text += text;
  else tokens.push({ type: "text", text });
}

/**
 * `text` cut into plain text, `code` spans (between single backticks, on one
 * line), links (http and https only) and mentions of `mentions`. Joining the
 * tokens' `text` gives back `text` except for the backticks around code.
 * @param {string} text
 * @param {Iterable<string>} [mentions]
 * @returns {Token[]}
 */
export function tokenize(text, mentions = []) {
  const known = new Set(mentions);
  /** @type {Token[]} */
  const tokens = [];
  const code = /`([^`\n]+)`/g;
  let position = 0;
  for (const match of text.matchAll(code)) {
    const start = match.index ?? 0;
    scanProse(text.slice(position, start), known, tokens);
    tokens.push({ type: "code", text: match[1] });
    position = start + match[0].length;
  }
  scanProse(text.slice(position), known, tokens);
  return tokens;
}

/**
 * Replace `parent`'s content with `text` rendered: <code>, <a> (new tab,
 * `rel="noopener noreferrer nofollow"`), <mark class="mention"> (`mention-me`
 * for `me`), text nodes for the rest.
 * @param {HTMLElement} parent
 * @param {string} text
 * @param {{mentions?: Iterable<string>, me?: string}} [options]
 */
export function renderRichText(parent, text, { mentions = [], me = "" } = {}) {
  const doc = parent.ownerDocument;
  parent.replaceChildren();
  for (const token of tokenize(text, mentions)) {
    if (token.type === "text") {
      parent.append(doc.createTextNode(token.text));
    } else if (token.type === "code") {
      const code = doc.createElement("code");
      code.textContent = token.text;
      parent.append(code);
    } else if (token.type === "link") {
      const link = doc.createElement("a");
      link.href = token.href;
      link.textContent = token.text;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      parent.append(link);
    } else {
      const mark = doc.createElement("mark");
      mark.className = token.username === me ? "mention mention-me" : "mention";
      mark.textContent = token.text;
      parent.append(mark);
    }
  }
}

/**
 * The `@name` being typed just before `caret` in `value`, for the mention
 * autocomplete: `{start, query}` (start: the index of the `@`), or null.
 * @param {string} value
 * @param {number} caret
 */
export function mentionQuery(value, caret) {
  const match = /(?<![\p{L}\p{N}_@])@([\p{L}\p{N}_.@+-]{0,150})$/u.exec(value.slice(0, caret));
  if (!match) return null;
  return { start: match.index, query: match[1] };
}

/**
 * The people whose username fits `query`: those starting with it first, then
 * those containing it, case-insensitively, at most `limit`.
 * @template {{username: string}} P
 * @param {P[]} people
 * @param {string} query
 * @param {number} [limit]
 * @returns {P[]}
 */
export function mentionMatches(people, query, limit = 6) {
  const q = query.toLowerCase();
  const starts = [];
  const contains = [];
  for (const person of people) {
    const name = person.username.toLowerCase();
    if (name.startsWith(q)) starts.push(person);
    else if (q && name.includes(q)) contains.push(person);
  }
  const byName = (/** @type {P} */ a, /** @type {P} */ b) => a.username.localeCompare(b.username);
  return [...starts.sort(byName), ...contains.sort(byName)].slice(0, limit);
}
