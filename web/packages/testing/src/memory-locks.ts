import type { LockManagerLike } from "@honeydo/realtime";

/**
 * MemoryLocks is an in-process stand-in for navigator.locks (exclusive mode
 * only, FIFO), for running the cross-tab layer in Node where several
 * "tabs" are clients in one process.
 */
export class MemoryLocks implements LockManagerLike {
  private readonly queues = new Map<string, (() => void)[]>();
  private readonly held = new Set<string>();

  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const run = (): void => {
        this.held.add(name);
        callback()
          .catch(() => undefined)
          .finally(() => {
            this.held.delete(name);
            const next = this.queues.get(name)?.shift();
            next?.();
            resolve();
          });
      };
      if (options.signal?.aborted) {
        reject(new Error("AbortError"));
        return;
      }
      if (!this.held.has(name)) {
        run();
        return;
      }
      const queue = this.queues.get(name) ?? [];
      this.queues.set(name, queue);
      queue.push(run);
      options.signal?.addEventListener("abort", () => {
        const i = queue.indexOf(run);
        if (i >= 0) {
          queue.splice(i, 1);
          reject(new Error("AbortError"));
        }
      });
    });
  }
}
