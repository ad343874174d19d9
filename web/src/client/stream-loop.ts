import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { durationMs } from "@bufbuild/protobuf/wkt";
import type { RealtimeService, SubscribeResponse } from "../gen/honeydo/realtime/v1/realtime_pb";
import { bearer, fetchToken, NoTokenError, type TokenProvider } from "./auth";
import { backoffDelay, DEFAULT_INITIAL_DELAY_MS, type BackoffOptions } from "./backoff";
import type { BrowserEnvironment } from "./environment";
import type { ErrorReason, StatusBody } from "./status";

/** Settings of a {@link StreamLoop}; the client fills in the defaults. */
export interface StreamLoopOptions {
  readonly backoff: BackoffOptions;
  readonly maxAttempts: number;
  readonly maxUnauthenticated: number;
  readonly watchdogFactor: number;
  readonly connectTimeoutMs: number;
  readonly defaultHeartbeatMs: number;
  readonly random: () => number;
}

/** What a {@link StreamLoop} works with and reports to. */
export interface StreamLoopDeps {
  readonly rpc: Client<typeof RealtimeService>;
  readonly getToken: TokenProvider;
  readonly env: BrowserEnvironment;
  /** getCursor is read at every connect: the resume cursor to send. */
  getCursor(): string;
  /** onFrame receives every frame of the current stream, in order. */
  onFrame(frame: SubscribeResponse): void;
  /** onStatus receives every status change. */
  onStatus(status: StatusBody): void;
  /**
   * onInvalidCursor is told that the server rejected the resume cursor
   * (INVALID_ARGUMENT before the welcome): forget it, so the next stream
   * starts fresh, and resync when it is welcomed.
   */
  onInvalidCursor(): void;
}

/** Reasons after which only the app's connect() tries again. */
const TERMINAL: ReadonlySet<ErrorReason> = new Set<ErrorReason>(["unauthenticated", "forbidden", "incompatible"]);

const WATCHDOG = Symbol("watchdog");

/**
 * StreamLoop keeps one Subscribe stream open: it fetches a token, opens the
 * stream with the resume cursor, watches for silence and, when the stream
 * fails, waits with jittered exponential backoff and tries again.
 *
 * The backoff starts over only after a healthy stream: one that stayed up
 * (from its welcome) for at least the initial delay. A server that welcomes
 * and drops at once therefore sees growing delays, not a reconnect every
 * 0–1 s. A request the server refuses as wrong (PERMISSION_DENIED,
 * UNIMPLEMENTED, INVALID_ARGUMENT, …) is not retried: it would fail the same
 * way. The exception is INVALID_ARGUMENT for a resume cursor, which is
 * dropped and the stream reopened at once without it.
 *
 * It is single-threaded like everything in a page: start, stop and kick may
 * be called at any time, and a generation counter makes the callbacks of a
 * superseded attempt harmless.
 */
export class StreamLoop {
  private running = false;
  private generation = 0;
  private attempt = 0;
  /** When the current attempt's stream was welcomed; undefined before. */
  private welcomedAt: number | undefined;
  private unauthStreak = 0;
  private forceRefresh = false;
  private abort: AbortController | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private watchdogTimer: ReturnType<typeof setTimeout> | undefined;
  /** True while waiting for a retry that kick() may bring forward. */
  private waiting = false;
  private retryAt = 0;

  constructor(
    private readonly deps: StreamLoopDeps,
    private readonly options: StreamLoopOptions,
  ) {}

  /** start opens the stream unless it is already running. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.unauthStreak = 0;
    void this.connect();
  }

  /**
   * stop closes the stream at once (the fetch is aborted, so the server sees
   * the stream end) and cancels any pending retry.
   */
  stop(): void {
    this.running = false;
    this.generation++;
    this.clearTimers();
    this.waiting = false;
    const abort = this.abort;
    this.abort = undefined;
    abort?.abort();
  }

  /**
   * kick retries at once if the loop is waiting to retry, e.g. because the
   * browser came back online or the tab became visible. A loop that gave up
   * (error without retry) starts over too.
   */
  kick(): void {
    if (!this.running || !this.waiting) return;
    void this.connect();
  }

  /**
   * retry connects at once whatever the state, forgetting earlier failures;
   * for the app's connect() after an error such as a rejected token.
   */
  retry(): void {
    if (!this.running) {
      this.start();
      return;
    }
    this.attempt = 0;
    this.unauthStreak = 0;
    void this.connect();
  }

  private clearTimers(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.watchdogTimer !== undefined) clearTimeout(this.watchdogTimer);
    this.retryTimer = undefined;
    this.watchdogTimer = undefined;
  }

  /**
   * armWatchdog declares the attempt `gen` dead after `ms` of silence. It
   * aborts the fetch and fails at once, without waiting for the aborted
   * read to settle: some fetch implementations (Node's undici, at least)
   * only give up a read on a silent connection when the peer moves again.
   */
  private armWatchdog(ms: number, abort: AbortController, gen: number): void {
    if (this.watchdogTimer !== undefined) clearTimeout(this.watchdogTimer);
    this.watchdogTimer = setTimeout(() => {
      this.watchdogTimer = undefined;
      if (gen !== this.generation) return;
      this.generation++; // the abandoned attempt's callbacks are now harmless
      abort.abort(WATCHDOG);
      this.fail("unavailable", `no frame from the server for ${Math.round(ms / 1000)} s`);
    }, ms);
  }

  /**
   * settle closes the books on the attempt that just ended and returns
   * whether its stream was welcomed. A stream that stayed up for at least
   * the initial delay was healthy, so the backoff starts over. Idempotent.
   */
  private settle(): boolean {
    const at = this.welcomedAt;
    this.welcomedAt = undefined;
    if (at === undefined) return false;
    if (Date.now() - at >= (this.options.backoff.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS)) this.attempt = 0;
    return true;
  }

  private async connect(): Promise<void> {
    const gen = ++this.generation;
    this.clearTimers();
    this.waiting = false;
    this.welcomedAt = undefined;
    this.abort?.abort();
    const abort = new AbortController();
    this.abort = abort;
    this.deps.onStatus({ state: "connecting", attempt: this.attempt });
    let silenceMs = this.options.connectTimeoutMs;
    let sentCursor = "";
    try {
      this.armWatchdog(silenceMs, abort, gen);
      const token = await abortable(
        fetchToken(this.deps.getToken, { forceRefresh: this.forceRefresh }),
        abort.signal,
      );
      if (gen !== this.generation) return;
      sentCursor = this.deps.getCursor();
      const stream = this.deps.rpc.subscribe(
        { resumeCursor: sentCursor },
        { signal: abort.signal, headers: { Authorization: bearer(token) } },
      );
      for await (const frame of stream) {
        if (gen !== this.generation) return;
        if (frame.frame.case === "welcome") {
          const w = frame.frame.value;
          const hb = w.heartbeatInterval ? durationMs(w.heartbeatInterval) : 0;
          silenceMs = Math.round((hb > 0 ? hb : this.options.defaultHeartbeatMs) * this.options.watchdogFactor);
          // The backoff restarts only once this stream proves healthy (settle).
          this.welcomedAt = Date.now();
          this.unauthStreak = 0;
          this.forceRefresh = false;
          this.armWatchdog(silenceMs, abort, gen);
          this.deps.onFrame(frame);
          if (gen !== this.generation) return;
          this.deps.onStatus({
            state: "connected",
            since: Date.now(),
            userId: w.userId,
            householdId: w.householdId,
          });
          continue;
        }
        this.armWatchdog(silenceMs, abort, gen);
        this.deps.onFrame(frame);
      }
      throw new ConnectError("the server ended the stream", Code.Unavailable);
    } catch (err) {
      if (gen !== this.generation) return;
      if (this.watchdogTimer !== undefined) clearTimeout(this.watchdogTimer);
      this.watchdogTimer = undefined;
      abort.abort();
      const welcomed = this.settle();
      const ce = ConnectError.from(err);
      if (err instanceof NoTokenError) {
        // Nobody is signed in: no fresh token will come until the app
        // signs someone in and calls connect().
        this.giveUp("unauthenticated", ce.rawMessage);
        return;
      }
      if (ce.code === Code.Unauthenticated) {
        this.unauthStreak++;
        this.forceRefresh = true;
        if (this.unauthStreak >= this.options.maxUnauthenticated) {
          this.giveUp("unauthenticated", ce.rawMessage || "unauthenticated");
          return;
        }
        // A healthy stream reached its token's expiry, or the token was
        // stale at open: come back at once with a fresh one. A stream cut
        // soon after its welcome backs off instead: the streak restarts at
        // every welcome, so only the backoff keeps that from looping.
        if (!welcomed || this.attempt === 0) this.scheduleRetry(0, "unauthenticated", ce.rawMessage);
        else this.fail("unauthenticated", ce.rawMessage || "unauthenticated");
        return;
      }
      switch (ce.code) {
        case Code.InvalidArgument:
          if (sentCursor !== "" && !welcomed) {
            // Not a cursor this server issued (corrupt storage, another
            // deployment): start fresh now, and resync at the welcome.
            this.deps.onInvalidCursor();
            this.scheduleRetry(0, "invalid-cursor", ce.rawMessage);
            return;
          }
          this.giveUp("incompatible", ce.message);
          return;
        case Code.PermissionDenied:
          this.giveUp("forbidden", ce.message);
          return;
        case Code.Unimplemented:
        case Code.FailedPrecondition:
        case Code.NotFound:
          // The same request would fail the same way: no retry loop.
          this.giveUp("incompatible", ce.message);
          return;
        default:
          this.fail("unavailable", ce.rawMessage || ce.message);
      }
    }
  }

  /** fail schedules the next try with backoff, or gives up past maxAttempts. */
  private fail(reason: ErrorReason, message: string): void {
    this.settle();
    if (this.attempt + 1 > this.options.maxAttempts) {
      this.giveUp(reason, `${message} (gave up after ${this.attempt} retries)`);
      return;
    }
    const delay = backoffDelay(this.attempt + 1, this.options.backoff, this.options.random);
    this.scheduleRetry(delay, reason, message);
  }

  private scheduleRetry(delayMs: number, reason: ErrorReason, message: string): void {
    this.attempt++;
    const retryAt = Date.now() + delayMs;
    this.retryAt = retryAt;
    if (!this.deps.env.isOnline()) {
      this.deps.onStatus({ state: "error", reason: "offline", message: "the browser is offline", retryAt });
    } else {
      this.deps.onStatus({ state: "reconnecting", attempt: this.attempt, delayMs, retryAt, reason, message });
    }
    this.waiting = true;
    const gen = this.generation;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (gen === this.generation && this.running) void this.connect();
    }, delayMs);
  }

  /**
   * giveUp stops retrying until start() or retry(); for a reason that is not
   * terminal (the attempt limit reached while unavailable) kick() too.
   */
  private giveUp(reason: ErrorReason, message: string): void {
    this.waiting = !TERMINAL.has(reason);
    this.attempt = 0;
    this.deps.onStatus({ state: "error", reason, message });
  }

  /**
   * noteOffline handles the browser's `offline` event. Without a network the
   * stream is gone even if its connection has not noticed: a dead TCP
   * connection can stay silent until the watchdog fires (2 heartbeats), and
   * the indicator would say "Live" meanwhile. So a stream being opened or
   * open is dropped at once and the status turns to the offline error; the
   * `online` event (kick) reconnects at once and resumes from the cursor, so
   * nothing is lost even if the connection was in fact still alive. A
   * pending retry just shows the offline error; a loop that gave up stays so.
   */
  noteOffline(): void {
    if (!this.running) return;
    if (this.waiting) {
      if (this.retryTimer === undefined) return;
      this.deps.onStatus({
        state: "error",
        reason: "offline",
        message: "the browser is offline",
        retryAt: this.retryAt,
      });
      return;
    }
    const abort = this.abort;
    if (abort === undefined || abort.signal.aborted) return; // gave up: nothing open
    this.generation++; // the dropped attempt's callbacks are now harmless
    this.clearTimers();
    abort.abort();
    this.fail("unavailable", "the browser went offline");
  }
}

/** abortable rejects as soon as signal aborts, whatever p does. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new ConnectError("aborted", Code.Canceled));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new ConnectError("aborted", Code.Canceled));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
