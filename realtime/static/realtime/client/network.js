// @ts-check
/**
 * network.js: what the browser says about the network and the tab. It
 * listens to `offline` and `online` on the window, reads `navigator.onLine`,
 * and listens to `visibilitychange` on the document, and tells the client
 * through three callbacks. Where these come from is injectable (the client's
 * `environment` option, for tests and other hosts); by default they are the
 * browser's own globals, and whatever is missing (as in Node) is simply not
 * listened to.
 * @module realtime/client/network
 */

/**
 * Where the network and visibility events come from: a window-like event
 * target (`online`, `offline`) with the `navigator` (its `onLine`) and the
 * `document` (`visibilitychange`, `visibilityState`). Each part is optional.
 * @typedef {object} Environment
 * @property {(type: string, listener: () => void) => void} [addEventListener]
 * @property {(type: string, listener: () => void) => void} [removeEventListener]
 * @property {{onLine?: boolean}} [navigator]
 * @property {{visibilityState?: string, addEventListener?: Function, removeEventListener?: Function}} [document]
 */

/**
 * The browser's own: the window (`globalThis` in a page; a `window` global
 * where one is defined apart from it), its navigator and its document.
 * @returns {{target: any, navigator: any, document: any}}
 */
function browserSources() {
  const g = /** @type {any} */ (globalThis);
  const win = g.window && typeof g.window.addEventListener === "function" ? g.window : g;
  return { target: win, navigator: g.navigator, document: g.document };
}

/** @param {any} target */
const canListen = (target) =>
  !!target && typeof target.addEventListener === "function" && typeof target.removeEventListener === "function";

/**
 * The network state as the browser reports it, and its changes.
 */
export class Network {
  /** @type {{target: any, navigator: any, document: any}} */
  #sources;
  /** an `offline` event came, and no `online` since */
  #offlineEvent = false;
  #listening = false;
  /** @type {{offline: () => void, online: () => void, visible: () => void}} */
  #handlers;
  #onOffline = () => {
    this.#offlineEvent = true;
    this.#handlers.offline();
  };
  #onOnline = () => {
    this.#offlineEvent = false;
    this.#handlers.online();
  };
  #onVisibility = () => {
    const doc = this.#sources.document;
    if (doc && doc.visibilityState === "visible") this.#handlers.visible();
  };

  /**
   * @param {Environment|null|undefined} environment  null: the browser's globals
   * @param {{offline: () => void, online: () => void, visible: () => void}} handlers
   *   `offline`: the browser lost the network; `online`: it has one again;
   *   `visible`: the tab became visible
   */
  constructor(environment, handlers) {
    this.#sources = environment
      ? { target: environment, navigator: environment.navigator, document: environment.document }
      : browserSources();
    this.#handlers = handlers;
  }

  /** Whether the browser reports no network: an `offline` event, or `navigator.onLine === false`. */
  get offline() {
    const nav = this.#sources.navigator;
    return this.#offlineEvent || (!!nav && nav.onLine === false);
  }

  /** Start listening (where there is something to listen to). */
  start() {
    if (this.#listening) return;
    this.#listening = true;
    const { target, document } = this.#sources;
    if (canListen(target)) {
      target.addEventListener("offline", this.#onOffline);
      target.addEventListener("online", this.#onOnline);
    }
    if (canListen(document)) document.addEventListener("visibilitychange", this.#onVisibility);
  }

  /** Stop listening. */
  stop() {
    if (!this.#listening) return;
    this.#listening = false;
    const { target, document } = this.#sources;
    if (canListen(target)) {
      target.removeEventListener("offline", this.#onOffline);
      target.removeEventListener("online", this.#onOnline);
    }
    if (canListen(document)) document.removeEventListener("visibilitychange", this.#onVisibility);
  }
}
