import { backoffCeiling, RECONNECT } from "./reconnect-policy.js";

/** Backoff settings for reconnecting. */
export interface BackoffOptions {
  /** Cap of the first retry's delay. Default 1000 ms. */
  readonly initialDelayMs?: number;
  /** Largest delay ever waited. Default 5000 ms. */
  readonly maxDelayMs?: number;
}

/** DEFAULT_INITIAL_DELAY_MS is the default cap of the first retry's delay (docs/RECONNECT.md). */
export const DEFAULT_INITIAL_DELAY_MS: number = RECONNECT.backoffInitialMs;
/** DEFAULT_MAX_DELAY_MS is the default largest delay between tries (docs/RECONNECT.md). */
export const DEFAULT_MAX_DELAY_MS: number = RECONNECT.backoffMaxMs;

/**
 * backoffCap returns the upper bound of the delay before retry number
 * `attempt` (1-based): initial · 2^(attempt−1), at most max (never below
 * initial).
 */
export function backoffCap(attempt: number, options: BackoffOptions = {}): number {
  return backoffCeiling(attempt, {
    backoffInitialMs: options.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS,
    backoffMaxMs: options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS,
  });
}

/**
 * backoffDelay returns the delay before retry number `attempt` with full
 * jitter: uniformly random in [0, backoffCap(attempt)], so that many clients
 * that lost the same server do not come back in lockstep. `random` returns a
 * number in [0, 1) like Math.random, which is the default.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(r * backoffCap(attempt, options));
}
