import type { Welcome } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import type { ResyncReason } from "./events.js";
import { afterWelcome } from "./reconnect-policy.js";
import { identityOf } from "./stream-loop.js";

/**
 * ResyncPolicy decides when the app must refetch its state, by the rules of
 * docs/RECONNECT.md (afterWelcome, shared case by case with the Go client).
 * Its job is only that decision: it reads each welcome frame (of this tab's
 * own stream or of the leader tab's, relayed) and answers with the reason
 * to report, or undefined when the events that follow continue what the app
 * has.
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
    // A leader's fresh stream reaching a follower that was in sync means
    // the leader dropped a cursor the server rejected.
    const pending = ownStream ? this.pending : this.synced ? "invalid-cursor" : undefined;
    const reason = afterWelcome({ resume: w.resume, identityChanged: moved, pending, first: !this.synced });
    if (ownStream) this.pending = undefined;
    this.synced = true;
    return reason;
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
