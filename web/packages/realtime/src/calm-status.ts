import type { StatusBody } from "./status.js";

/**
 * CalmStatus turns the stream loop's every move into the changes a person
 * should see. The loop reports each attempt ("connecting", "reconnecting",
 * "connecting", …); shown as is, a badge flickers and a screen reader
 * announces each flip. What is shown instead:
 *
 * - Live → Reconnecting (with its countdown) → Live, or → an error. While
 *   reconnecting, each new attempt updates the countdown but never flips
 *   the state back to "connecting".
 * - A stream that ends and is back within `graceMs` shows nothing: the
 *   status stays "connected" (the new stream resumes from the cursor, so
 *   nothing is missed). A stream that went silent (`stalled`) and errors
 *   (offline, signed out, refused) are shown at once.
 */
export class CalmStatus {
  private shown: StatusBody | undefined;
  /** The newest status held back during the grace period. */
  private held: StatusBody | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly emit: (body: StatusBody) => void,
    private readonly graceMs: number,
  ) {}

  /** push takes the loop's next status. */
  push(next: StatusBody): void {
    const shown = this.shown;
    if (shown?.state === "connected") {
      if (next.state === "connected") {
        const quiet = this.timer !== undefined || this.held !== undefined;
        this.cancel();
        // Back within the grace period as the same person: nothing to say.
        if (quiet && next.userId === shown.userId && next.householdId === shown.householdId) return;
        this.show(next);
        return;
      }
      if (next.state === "connecting" || (next.state === "reconnecting" && next.stalled !== true)) {
        this.held = next.state === "reconnecting" ? next : (this.held ?? next);
        if (this.timer === undefined && this.graceMs > 0) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            const held = this.held;
            this.held = undefined;
            if (held !== undefined) this.show(asReconnecting(held));
          }, this.graceMs);
        } else if (this.graceMs <= 0) {
          this.show(asReconnecting(next));
        }
        return;
      }
      this.cancel();
      this.show(next);
      return;
    }
    // While retrying (reconnecting, or offline with a retry time), a new
    // attempt keeps the state: the countdown just reads "now".
    if (
      next.state === "connecting" &&
      (shown?.state === "reconnecting" || (shown?.state === "error" && shown.retryAt !== undefined))
    ) {
      return;
    }
    this.show(next);
  }

  /** reset forgets what was shown: the client stopped. */
  reset(): void {
    this.cancel();
    this.shown = undefined;
  }

  private cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.held = undefined;
  }

  private show(body: StatusBody): void {
    this.shown = body;
    this.emit(body);
  }
}

/**
 * asReconnecting shows an attempt that outlived the grace period as the
 * reconnecting state it belongs to.
 */
function asReconnecting(body: StatusBody): StatusBody {
  if (body.state !== "connecting") return body;
  const now = Date.now();
  return {
    state: "reconnecting",
    attempt: Math.max(1, body.attempt),
    delayMs: 0,
    retryAt: now,
    reason: "unavailable",
    message: "the stream ended; reconnecting",
  };
}
