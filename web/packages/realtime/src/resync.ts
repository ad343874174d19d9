import { ResumeStatus, type Welcome } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import type { ResyncReason } from "./events.js";
import { identityOf } from "./stream-loop.js";

/**
 * ResyncPolicy decides when the app must refetch its state. Its job is only
 * that decision: it reads each welcome frame (of this tab's own stream or
 * of the leader tab's, relayed) and answers with the reason to report, or
 * undefined when the events that follow continue what the app has.
 *
 * - The first stream of this client: `initial`, unless it resumed a cursor
 *   the app supplied.
 * - A resume the server could not honour: `expired` (older than its
 *   history) or `epoch-changed` (it lost its history).
 * - A cursor the server rejected (reported by the stream loop through
 *   {@link cursorRejected}): `invalid-cursor` at the next welcome.
 * - A stream for another user, household or rooms than the last one:
 *   `identity-changed`, whatever its resume said (a cursor resumes on
 *   whatever rooms the token grants).
 */
export class ResyncPolicy {
  private synced = false;
  /** The last welcome's identity (see identityOf). */
  private identity: string | undefined;
  /** A resync to report at the next welcome of this tab's own stream. */
  private pending: ResyncReason | undefined;

  /** welcome reads a welcome frame; ownStream is false for one relayed by the leader tab. */
  welcome(w: Welcome, ownStream: boolean): ResyncReason | undefined {
    const identity = identityOf(w);
    const moved = this.synced && this.identity !== undefined && identity !== this.identity;
    this.identity = identity;
    if (moved) {
      if (ownStream) this.pending = undefined;
      return "identity-changed";
    }
    switch (w.resume) {
      case ResumeStatus.EXPIRED:
        this.synced = true;
        return "expired";
      case ResumeStatus.EPOCH_CHANGED:
        this.synced = true;
        return "epoch-changed";
      case ResumeStatus.RESUMED:
        this.synced = true;
        return undefined;
      default:
        // A fresh stream (no cursor was sent).
        if (ownStream && this.pending !== undefined) {
          const reason = this.pending;
          this.pending = undefined;
          this.synced = true;
          return reason;
        }
        if (!this.synced) {
          this.synced = true;
          return "initial";
        }
        // The leader's stream started without a cursor although this tab
        // had one: the leader dropped a cursor the server rejected.
        return ownStream ? undefined : "invalid-cursor";
    }
  }

  /**
   * leaderConnected reads a follower tab's first "connected" status from the
   * leader: the tab joined a stream already running, whose welcome it never
   * saw, so its state is as unknown as at a first stream.
   */
  leaderConnected(): ResyncReason | undefined {
    if (this.synced) return undefined;
    this.synced = true;
    return "initial";
  }

  /** cursorRejected notes that the next fresh stream of this tab follows a rejected cursor. */
  cursorRejected(): void {
    this.pending = "invalid-cursor";
  }

  /** streamStopped forgets that the app is in sync: the next stream may have missed anything. */
  streamStopped(): void {
    this.synced = false;
  }
}
