import type { BrowserEnvironment } from "@honeydo/realtime";

type Kind = "online" | "offline" | "visible";

/**
 * FakeEnvironment stands in for the page in tests: set `online` and fire
 * the browser's events by hand.
 */
export class FakeEnvironment implements BrowserEnvironment {
  online = true;
  private readonly listeners: Record<Kind, Set<() => void>> = {
    online: new Set(),
    offline: new Set(),
    visible: new Set(),
  };

  isOnline(): boolean {
    return this.online;
  }
  onOnline(fn: () => void): () => void {
    return this.listen("online", fn);
  }
  onOffline(fn: () => void): () => void {
    return this.listen("offline", fn);
  }
  onVisible(fn: () => void): () => void {
    return this.listen("visible", fn);
  }

  /** fire calls the listeners of one event. */
  fire(kind: Kind): void {
    for (const fn of [...this.listeners[kind]]) fn();
  }

  private listen(kind: Kind, fn: () => void): () => void {
    this.listeners[kind].add(fn);
    return () => this.listeners[kind].delete(fn);
  }
}
