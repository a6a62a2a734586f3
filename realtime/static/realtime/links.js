// @ts-check
/**
 * links.js: which URLs from server data a page may turn into links.
 * @module links
 */

/**
 * True for a path on this site ("/rooms/x/"), false for anything a browser
 * would take elsewhere: "https://…", "//host/…" (scheme-relative), "/\host"
 * (browsers read a backslash as a slash), "javascript:…", control characters.
 * @param {unknown} url
 * @returns {boolean}
 */
export function isLocalPath(url) {
  if (typeof url !== "string" || !url.startsWith("/")) return false;
  if (url.startsWith("//") || url.startsWith("/\\")) return false;
  // Browsers drop tabs and newlines inside URLs ("/\t/host" is "//host").
  return !/[\u0000-\u001f\u007f\\]/.test(url);
}
