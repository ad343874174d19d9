/**
 * Listeners is an ordered set of callbacks of one kind (status listeners,
 * resync handlers). Its job is only the calling convention every listener of
 * the client shares: called synchronously in the order they were added, over
 * a copy so that a listener may remove itself (or others) while being
 * called, and a listener that throws is reported to `onError` and does not
 * stop the ones after it.
 */
export class Listeners<A extends readonly unknown[]> {
  private readonly set = new Set<(...args: A) => void>();

  constructor(private readonly onError: (err: unknown) => void) {}

  /** add registers fn and returns the function that removes it again. */
  add(fn: (...args: A) => void): () => void {
    this.set.add(fn);
    return () => {
      this.set.delete(fn);
    };
  }

  /** emit calls every listener with args. */
  emit(...args: A): void {
    for (const fn of [...this.set]) {
      try {
        fn(...args);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  /** clear removes every listener. */
  clear(): void {
    this.set.clear();
  }
}
