/**
 * BrowserEnvironment is what the client needs from the page: whether the
 * browser believes it is online, and hooks for coming back online and for a
 * hidden tab becoming visible. Tests can pass their own.
 */
export interface BrowserEnvironment {
  /** isOnline is navigator.onLine, or true where there is no navigator. */
  isOnline(): boolean;
  /** onOnline calls fn on the window's `online` event. */
  onOnline(fn: () => void): () => void;
  /** onOffline calls fn on the window's `offline` event. */
  onOffline(fn: () => void): () => void;
  /** onVisible calls fn when the document becomes visible. */
  onVisible(fn: () => void): () => void;
}

const noop = (): void => {};

/** browserEnvironment reads the real window, document and navigator, where present. */
export function browserEnvironment(): BrowserEnvironment {
  const win = typeof window === "undefined" ? undefined : window;
  const doc = typeof document === "undefined" ? undefined : document;
  const nav = typeof navigator === "undefined" ? undefined : navigator;
  const listen = (target: EventTarget | undefined, type: string, fn: () => void): (() => void) => {
    if (target === undefined) return noop;
    target.addEventListener(type, fn);
    return () => target.removeEventListener(type, fn);
  };
  return {
    isOnline: () => nav?.onLine ?? true,
    onOnline: (fn) => listen(win, "online", fn),
    onOffline: (fn) => listen(win, "offline", fn),
    onVisible: (fn) =>
      listen(doc, "visibilitychange", () => {
        if (doc?.visibilityState === "visible") fn();
      }),
  };
}
