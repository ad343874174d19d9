/**
 * The reconnect contract of docs/RECONNECT.md as pure functions: what the
 * stream loop does when a stream ends, what a welcome frame asks of the
 * app, and when the watchdog and the token renewal fire. The Go client
 * has the same functions (client/internal/reconnect); both test suites run
 * every case of testdata/reconnect/cases.json against their own copy.
 *
 * Nothing here keeps state, reads a clock or draws a random number: the
 * loop passes in what happened and carries the counters from one decision
 * to the next.
 */
import { Code } from "@connectrpc/connect";
import { ResumeStatus } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import type { ResyncReason } from "./events.js";
import type { ErrorReason } from "./status.js";

/** The numbers of the contract; docs/RECONNECT.md lists them. */
export const RECONNECT = {
  /** Ceiling of the first retry's delay; a stream that lived this long was healthy. */
  backoffInitialMs: 1000,
  /** Largest ceiling of a retry's delay. */
  backoffMaxMs: 5000,
  /** From opening a stream (token fetch included) to its welcome. */
  connectTimeoutMs: 10_000,
  /** Heartbeat interval assumed when a welcome announces none (the server's default). */
  defaultHeartbeatMs: 4000,
  /** Heartbeat intervals of silence that declare a welcomed stream dead. */
  watchdogFactor: 2,
  /** The next stream opens this long before the server ends the current one. */
  renewLeadMs: 10_000,
  /** Renewal retry k waits k steps, at most a quarter of the time left. */
  renewRetryStepMs: 1000,
  /** No renewal retry with this little time left: the stream ends and the loop reconnects. */
  renewMinLeftMs: 1000,
  /** Unary calls without a timeout of their own. */
  callTimeoutMs: 10_000,
  /** Unauthenticated endings in a row, no welcome between, that stop the loop. */
  maxUnauthenticated: 2,
} as const;

/** The settings a client may change. */
export interface ReconnectPolicy {
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly maxUnauthenticated: number;
}

/** DEFAULT_POLICY is the contract's policy. */
export const DEFAULT_POLICY: ReconnectPolicy = {
  backoffInitialMs: RECONNECT.backoffInitialMs,
  backoffMaxMs: RECONNECT.backoffMaxMs,
  maxUnauthenticated: RECONNECT.maxUnauthenticated,
};

/**
 * backoffCeiling returns the ceiling of the delay before retry `attempt`
 * (from 1): initial · 2^(attempt−1), at most max; 0 before the first. The
 * delay is drawn uniformly from [0, ceiling] (full jitter).
 */
export function backoffCeiling(attempt: number, policy: Pick<ReconnectPolicy, "backoffInitialMs" | "backoffMaxMs">): number {
  if (attempt < 1) return 0;
  const max = Math.max(policy.backoffMaxMs, policy.backoffInitialMs, 0);
  // 2^30 already exceeds any sensible cap; avoid Infinity for huge attempts.
  return Math.min(max, policy.backoffInitialMs * 2 ** Math.min(attempt - 1, 30));
}

/**
 * How a stream, or an attempt to open one, ended: an error with a code,
 * a clean end by the server, the watchdog, or a token provider with no
 * token to give (nobody is signed in).
 */
export type EndKind = "error" | "clean" | "stalled" | "no-token";

/** What the stream loop knows when a stream ends. */
export interface Ending {
  readonly end: EndKind;
  /** The error's code for `error`. */
  readonly code?: Code;
  /** The stream got its welcome frame. */
  readonly welcomed: boolean;
  /** From the welcome to the end. */
  readonly livedMs: number;
  /** The stream was opened with a resume cursor. */
  readonly sentCursor: boolean;
  /** Retries since the last healthy stream, before this ending. */
  readonly attempt: number;
  /** Unauthenticated endings since the last welcome, before this ending. */
  readonly unauthStreak: number;
}

/** What to do after an {@link Ending}. */
export interface Decision {
  readonly action: "retry" | "stop";
  readonly reason: Exclude<ErrorReason, "offline">;
  /** The retry's number (from 1); 0 when stopping. */
  readonly attempt: number;
  /** Ceiling of the retry's random delay; 0 means at once. */
  readonly ceilingMs: number;
  /** Ask the token provider for a fresh token (forceRefresh). */
  readonly refreshToken: boolean;
  /** Forget the resume cursor; resync `invalid-cursor` at the next welcome. */
  readonly dropCursor: boolean;
  /** The Unauthenticated streak after this ending. */
  readonly unauthStreak: number;
}

/** afterEnd decides what follows an ending. */
export function afterEnd(e: Ending, policy: ReconnectPolicy = DEFAULT_POLICY): Decision {
  let attempt = e.attempt;
  let streak = e.unauthStreak;
  if (e.welcomed) {
    streak = 0;
    // A stream that stayed up a while was healthy: the backoff starts over.
    // One that died at once was not, or a server that welcomes and drops
    // would be hammered.
    if (e.livedMs >= policy.backoffInitialMs) attempt = 0;
  }
  const base = { refreshToken: false, dropCursor: false };
  const stop = (reason: Decision["reason"]): Decision => ({
    ...base,
    action: "stop",
    reason,
    attempt: 0,
    ceilingMs: 0,
    unauthStreak: streak,
  });
  const retry = (reason: Decision["reason"], immediate: boolean, extra: Partial<Decision> = {}): Decision => ({
    ...base,
    action: "retry",
    reason,
    attempt: attempt + 1,
    ceilingMs: immediate ? 0 : backoffCeiling(attempt + 1, policy),
    unauthStreak: streak,
    ...extra,
  });
  switch (e.end) {
    case "no-token":
      return stop("unauthenticated");
    case "clean":
    case "stalled":
      return retry("unavailable", false);
    case "error":
      break;
  }
  switch (e.code) {
    case Code.Unauthenticated:
      streak++;
      if (streak >= policy.maxUnauthenticated) return stop("unauthenticated");
      // A healthy stream reached its token's expiry (renewal failed), or the
      // token was stale at open: come back at once with a fresh one. A
      // stream cut soon after its welcome backs off: the streak restarts at
      // every welcome, so only the backoff keeps that from looping.
      return retry("unauthenticated", !e.welcomed || attempt === 0, { refreshToken: true });
    case Code.InvalidArgument:
      // Not a cursor this server issued (corrupt storage, another
      // deployment): start afresh now and resync at the welcome.
      if (e.sentCursor && !e.welcomed) return retry("invalid-cursor", true, { dropCursor: true });
      return stop("incompatible");
    case Code.PermissionDenied:
      return stop("forbidden");
    case Code.Unimplemented:
    case Code.FailedPrecondition:
    case Code.NotFound:
      // The request itself is wrong: the same request would fail the same way.
      return stop("incompatible");
    default:
      // Unavailable, ResourceExhausted (fell behind, stream or rate limit),
      // Internal, Unknown, DeadlineExceeded, …: the server or the path may
      // recover, and the cursor makes the retry lossless.
      return retry("unavailable", false);
  }
}

/** What the client knows at a welcome frame. */
export interface WelcomeState {
  readonly resume: ResumeStatus;
  /** An earlier welcome named another user, household or set of rooms. */
  readonly identityChanged: boolean;
  /** A resync owed from before the stream opened (the cursor was dropped). */
  readonly pending: ResyncReason | undefined;
  /** No stream was welcomed before. */
  readonly first: boolean;
}

/**
 * afterWelcome returns the resync a welcome calls for, or undefined. The
 * server resumes a cursor on whatever rooms the token grants, so a stream
 * of another household can say RESUMED: a changed identity wins.
 */
export function afterWelcome(w: WelcomeState): ResyncReason | undefined {
  if (w.identityChanged) return "identity-changed";
  switch (w.resume) {
    case ResumeStatus.EXPIRED:
      return "expired";
    case ResumeStatus.EPOCH_CHANGED:
      return "epoch-changed";
    case ResumeStatus.RESUMED:
      return undefined;
    default:
      if (w.pending !== undefined) return w.pending;
      return w.first ? "initial" : undefined;
  }
}

/**
 * watchdogMs returns how long a welcomed stream may stay silent: two of the
 * heartbeat intervals its welcome announced (0: none, the default assumed).
 */
export function watchdogMs(heartbeatMs: number, factor: number = RECONNECT.watchdogFactor): number {
  return Math.round((heartbeatMs > 0 ? heartbeatMs : RECONNECT.defaultHeartbeatMs) * factor);
}

/**
 * renewInMs returns when to open the next stream of one that the server
 * ends in `leftMs`: `leadMs` before its end, no earlier than half way;
 * undefined when nothing is left to renew.
 */
export function renewInMs(leftMs: number, leadMs: number): number | undefined {
  if (leftMs <= 0) return undefined;
  return Math.max(leftMs / 2, leftMs - leadMs);
}

/**
 * renewRetryInMs returns when to try renewal retry `attempt` (from 1) of a
 * stream that ends in `leftMs`; undefined once too little is left, when the
 * stream is left to end and the loop reconnects at once.
 */
export function renewRetryInMs(leftMs: number, attempt: number): number | undefined {
  if (leftMs <= RECONNECT.renewMinLeftMs) return undefined;
  return Math.min(attempt * RECONNECT.renewRetryStepMs, leftMs / 4);
}

/**
 * renewalTaken reports whether the next stream (ending at `nextEndsAt`,
 * undefined for never) replaces the current one (ending at `currentEndsAt`).
 * One that ends no later carries a token that was not renewed yet.
 */
export function renewalTaken(currentEndsAt: number, nextEndsAt: number | undefined): boolean {
  return nextEndsAt === undefined || nextEndsAt > currentEndsAt;
}

/**
 * seamless reports whether switching to a renewed stream is invisible: it
 * resumed and serves the same user, household and rooms. Otherwise it is a
 * fresh stream (a connected status, a resync).
 */
export function seamless(resume: ResumeStatus, sameIdentity: boolean): boolean {
  return sameIdentity && resume === ResumeStatus.RESUMED;
}
