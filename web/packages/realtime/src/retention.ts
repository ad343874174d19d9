/** What a {@link Retention} starts and stops. */
export interface RetentionTarget {
  /** start opens the stream if it is not open (and the app has not closed it). */
  start(): void;
  /** idle is called once nobody has wanted the stream for the stop delay. */
  idle(): void;
}

/**
 * Retention decides when the stream is wanted. Its job is the reference
 * count behind "the stream opens with the first listener and closes shortly
 * after the last one leaves": each listener (status, event, resync, an
 * `events()` iteration) retains the stream while registered, and the app's
 * `connect()` holds it without any. The delay before closing lets a
 * listener that leaves and comes straight back (React StrictMode's double
 * mount, a re-render that resubscribes) keep the same stream.
 */
export class Retention {
  private refs = 0;
  private held = false;
  private stopTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly target: RetentionTarget,
    private readonly stopDelayMs: number,
  ) {}

  /**
   * retain counts one more user and starts the stream. The returned function
   * calls `release` and uncounts the user; calling it again does nothing.
   */
  retain(release: () => void): () => void {
    this.refs++;
    this.cancelStop();
    this.target.start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      this.refs--;
      this.scheduleStop();
    };
  }

  /** hold keeps the stream wanted without any user (connect()), or stops holding it. */
  setHeld(held: boolean): void {
    this.held = held;
    if (!held) this.scheduleStop();
  }

  /** wanted is true while a user is counted or the app holds the stream. */
  get wanted(): boolean {
    return this.refs > 0 || this.held;
  }

  /** cancelStop forgets a pending stop (the stream was stopped or is wanted again). */
  cancelStop(): void {
    if (this.stopTimer !== undefined) {
      clearTimeout(this.stopTimer);
      this.stopTimer = undefined;
    }
  }

  private scheduleStop(): void {
    if (this.wanted || this.stopTimer !== undefined) return;
    this.stopTimer = setTimeout(() => {
      this.stopTimer = undefined;
      if (!this.wanted) this.target.idle();
    }, this.stopDelayMs);
  }
}
