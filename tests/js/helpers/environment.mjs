// A fake browser environment for the client's `environment` option: a
// window-like EventTarget (`online`, `offline`) with a `navigator` and a
// `document` (`visibilitychange`), steered by the test.

/**
 * @param {{onLine?: boolean, visibilityState?: "visible"|"hidden"}} [options]
 */
export function fakeEnvironment({ onLine = true, visibilityState = "visible" } = {}) {
  const env = new EventTarget();
  const document = Object.assign(new EventTarget(), { visibilityState });
  /** Listeners currently attached, by event type, on the window-like target and the document. */
  const listening = new Map();
  for (const target of [env, document]) {
    const add = target.addEventListener.bind(target);
    const remove = target.removeEventListener.bind(target);
    target.addEventListener = (type, listener, options) => {
      listening.set(type, (listening.get(type) ?? 0) + 1);
      add(type, listener, options);
    };
    target.removeEventListener = (type, listener, options) => {
      listening.set(type, (listening.get(type) ?? 0) - 1);
      remove(type, listener, options);
    };
  }
  return Object.assign(env, {
    navigator: { onLine },
    document,
    listening,
    /** The browser loses the network: `navigator.onLine` false, then `offline`. */
    goOffline() {
      env.navigator.onLine = false;
      env.dispatchEvent(new Event("offline"));
    },
    /** The browser has a network again: `navigator.onLine` true, then `online`. */
    goOnline() {
      env.navigator.onLine = true;
      env.dispatchEvent(new Event("online"));
    },
    /** @param {"visible"|"hidden"} state */
    setVisibility(state) {
      document.visibilityState = state;
      document.dispatchEvent(new Event("visibilitychange"));
    },
  });
}
