/**
 * A source the iterator reads from: `listen` registers `push` (called with
 * each value) and `end` (called when the source finishes for good), and
 * returns the function that unregisters both.
 */
export type IteratorSource<T> = (push: (value: T) => void, end: () => void) => () => void;

/**
 * listenerIterator turns a listener registration into an async iterator.
 * Its job is the async-iteration contract alone: values pushed while
 * nobody awaits are buffered in order (there is no bound: the loop body
 * should keep up, or hand work off); the listener is registered at once
 * (not at the first `next()`, so nothing pushed in between is lost) and
 * unregistered when the iteration ends: `break`/`return` in a `for await`,
 * the signal aborting, or the source ending. Ending resolves a pending
 * `next()` with `done: true`; an already aborted signal ends the iteration
 * before it starts.
 */
export function listenerIterator<T>(listen: IteratorSource<T>, signal?: AbortSignal): AsyncIterableIterator<T> {
  const buffered: T[] = [];
  let waiting: ((r: IteratorResult<T, undefined>) => void) | undefined;
  let done = false;
  let unlisten: (() => void) | undefined;

  const finish = (): void => {
    if (done) return;
    done = true;
    buffered.length = 0;
    unlisten?.();
    unlisten = undefined;
    signal?.removeEventListener("abort", finish);
    const w = waiting;
    waiting = undefined;
    w?.({ done: true, value: undefined });
  };

  if (signal?.aborted) {
    done = true;
  } else {
    signal?.addEventListener("abort", finish, { once: true });
    unlisten = listen((value) => {
      if (done) return;
      const w = waiting;
      if (w !== undefined) {
        waiting = undefined;
        w({ done: false, value });
      } else {
        buffered.push(value);
      }
    }, finish);
    // The source may have ended while registering.
    if (done) {
      unlisten();
      unlisten = undefined;
    }
  }

  const iterator: AsyncIterableIterator<T> = {
    next(): Promise<IteratorResult<T, undefined>> {
      if (buffered.length > 0) return Promise.resolve({ done: false, value: buffered.shift() as T });
      if (done) return Promise.resolve({ done: true, value: undefined });
      if (waiting !== undefined) return Promise.reject(new Error("realtime: next() called while a next() is pending"));
      return new Promise((resolve) => {
        waiting = resolve;
      });
    },
    return(): Promise<IteratorResult<T, undefined>> {
      finish();
      return Promise.resolve({ done: true, value: undefined });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
