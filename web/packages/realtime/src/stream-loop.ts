import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { durationMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { RealtimeService, SubscribeResponse, Welcome } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import { bearer, fetchToken, NoTokenError, type TokenProvider } from "./auth.js";
import { DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS, type BackoffOptions } from "./backoff.js";
import type { BrowserEnvironment } from "./environment.js";
import {
  afterEnd,
  renewalTaken,
  renewInMs,
  renewRetryInMs,
  seamless,
  watchdogMs,
  type Decision,
  type EndKind,
  type ReconnectPolicy,
} from "./reconnect-policy.js";
import type { ErrorReason, StatusBody } from "./status.js";

/** Settings of a {@link StreamLoop}; the client fills in the defaults. */
export interface StreamLoopOptions {
  readonly backoff: BackoffOptions;
  readonly maxAttempts: number;
  readonly maxUnauthenticated: number;
  readonly watchdogFactor: number;
  readonly connectTimeoutMs: number;
  readonly defaultHeartbeatMs: number;
  /**
   * How long before the server would end a stream (its token's expiry plus
   * grace) the next stream is opened; at most half the stream's life.
   */
  readonly renewLeadMs: number;
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
const SUPERSEDED = Symbol("superseded");
/** Thrown when the server ends the stream without an error. */
const ENDED = Symbol("ended");

/**
 * StreamLoop keeps one Subscribe stream open: it fetches a token, opens the
 * stream with the resume cursor, watches for silence and, when the stream
 * fails, waits with jittered exponential backoff and tries again.
 *
 * What follows the end of a stream (retry at once or with backoff, with a
 * fresh token, without the cursor, or stop) is the reconnect contract of
 * docs/RECONNECT.md, decided by reconnect-policy.ts, which the Go client
 * shares case by case (testdata/reconnect/cases.json).
 *
 * A stream ends when its token does (plus the server's grace). Before that
 * happens the loop renews it: it opens the next stream with a fresh token
 * and the current cursor while the old one keeps delivering, and switches
 * over at the new stream's welcome. The new stream replays what the old one
 * delivered since that cursor; the client drops those by event id. Nothing
 * is missed, nothing is handled twice, and the status does not change. If
 * renewing fails the old stream carries on until it ends, and the loop
 * reconnects as after any ending.
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
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  /** The next stream while it is being opened (renew). */
  private successor: AbortController | undefined;
  /** The current stream's token: renewing with the same one is pointless. */
  private token = "";
  /** True while waiting for a retry that kick() may bring forward. */
  private waiting = false;
  private retryAt = 0;
  private readonly policy: ReconnectPolicy;

  constructor(
    private readonly deps: StreamLoopDeps,
    private readonly options: StreamLoopOptions,
  ) {
    this.policy = {
      backoffInitialMs: options.backoff.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS,
      backoffMaxMs: options.backoff.maxDelayMs ?? DEFAULT_MAX_DELAY_MS,
      maxUnauthenticated: options.maxUnauthenticated,
    };
  }

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

  /** renewing is true while the next stream is being opened (tests). */
  get renewing(): boolean {
    return this.successor !== undefined;
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
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.retryTimer = undefined;
    this.watchdogTimer = undefined;
    this.cancelRenew();
  }

  /** cancelRenew drops a planned or half-open successor stream. */
  private cancelRenew(): void {
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    this.successor?.abort();
    this.successor = undefined;
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
      this.cancelRenew();
      this.apply(this.decide("stalled"), `no frame from the server for ${Math.round(ms / 1000)} s`, true);
    }, ms);
  }

  /**
   * decide closes the books on the attempt that just ended and asks the
   * policy what follows. Only the first call after a welcome sees it.
   */
  private decide(end: EndKind, code?: Code, sentCursor = false): Decision {
    const at = this.welcomedAt;
    this.welcomedAt = undefined;
    return afterEnd(
      {
        end,
        ...(code === undefined ? {} : { code }),
        welcomed: at !== undefined,
        livedMs: at === undefined ? 0 : Date.now() - at,
        sentCursor,
        attempt: this.attempt,
        unauthStreak: this.unauthStreak,
      },
      this.policy,
    );
  }

  /**
   * open sends the Subscribe request. The stream has no deadline of its own
   * (the transport's call timeout is for unary calls): the watchdog and the
   * token's expiry bound it.
   */
  private open(token: string, cursor: string, abort: AbortController): AsyncIterator<SubscribeResponse> {
    return this.deps.rpc
      .subscribe(
        { resumeCursor: cursor },
        { signal: abort.signal, timeoutMs: 0, headers: { Authorization: bearer(token) } },
      )
      [Symbol.asyncIterator]();
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
    let sentCursor = "";
    let frames: AsyncIterator<SubscribeResponse>;
    let first: IteratorResult<SubscribeResponse>;
    try {
      this.armWatchdog(this.options.connectTimeoutMs, abort, gen);
      const token = await abortable(
        fetchToken(this.deps.getToken, { forceRefresh: this.forceRefresh }),
        abort.signal,
      );
      if (gen !== this.generation) return;
      this.token = token;
      sentCursor = this.deps.getCursor();
      frames = this.open(token, sentCursor, abort);
      first = await frames.next();
    } catch (err) {
      if (gen === this.generation) this.failed(err, abort, sentCursor);
      return;
    }
    if (gen !== this.generation) return;
    await this.consume(frames, first, gen, abort, sentCursor, false);
  }

  /**
   * consume reads a stream, `first` being its first result, until it ends
   * or a newer attempt supersedes it. A renewed stream (`renewed`) reports
   * no status: to the app it is the same connection.
   */
  private async consume(
    frames: AsyncIterator<SubscribeResponse>,
    first: IteratorResult<SubscribeResponse>,
    gen: number,
    abort: AbortController,
    sentCursor: string,
    renewed: boolean,
  ): Promise<void> {
    let silenceMs = this.options.connectTimeoutMs;
    try {
      for (let r = first; !r.done; r = await frames.next()) {
        if (gen !== this.generation) return;
        const frame = r.value;
        if (frame.frame.case === "welcome") {
          const w = frame.frame.value;
          const hb = w.heartbeatInterval ? durationMs(w.heartbeatInterval) : 0;
          silenceMs = watchdogMs(hb > 0 ? hb : this.options.defaultHeartbeatMs, this.options.watchdogFactor);
          // The backoff restarts only once this stream proves healthy (decide).
          if (!renewed) this.welcomedAt = Date.now();
          this.unauthStreak = 0;
          this.forceRefresh = false;
          this.armWatchdog(silenceMs, abort, gen);
          this.scheduleRenew(w, gen);
          this.deps.onFrame(frame);
          if (gen !== this.generation) return;
          if (!renewed) {
            this.deps.onStatus({
              state: "connected",
              since: Date.now(),
              userId: w.userId,
              householdId: w.householdId,
            });
          }
          continue;
        }
        this.armWatchdog(silenceMs, abort, gen);
        this.deps.onFrame(frame);
      }
      throw ENDED;
    } catch (err) {
      if (gen === this.generation) this.failed(err, abort, sentCursor);
    }
  }

  /**
   * scheduleRenew plans the stream's successor: `renewLeadMs` before the
   * server would end it, and no later than half way through its life.
   */
  private scheduleRenew(w: Welcome, gen: number, tries = 0): void {
    if (w.expireTime === undefined) return;
    const endsAt = timestampMs(w.expireTime);
    const left = endsAt - Date.now();
    const delay = tries === 0 ? renewInMs(left, this.options.renewLeadMs) : renewRetryInMs(left, tries);
    if (delay === undefined) return;
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      this.renewTimer = undefined;
      if (gen === this.generation) void this.renew(w, gen, endsAt, tries);
    }, delay);
  }

  /**
   * renew opens the next stream with a fresh token and the cursor while the
   * current one (`gen`, ending at `endsAt`) keeps delivering, and switches
   * to it at its welcome. A successor that fails, or whose token ends no
   * later than the current one's, is dropped and tried again, with a forced
   * token refresh, while time is left.
   */
  private async renew(current: Welcome, gen: number, endsAt: number, tries: number): Promise<void> {
    const abort = new AbortController();
    this.successor = abort;
    const timer = setTimeout(() => abort.abort(), this.options.connectTimeoutMs);
    let frames: AsyncIterator<SubscribeResponse>;
    let first: IteratorResult<SubscribeResponse>;
    let cursor = "";
    let newToken = "";
    let same = true;
    try {
      const token = await abortable(fetchToken(this.deps.getToken, { forceRefresh: tries > 0 }), abort.signal);
      if (gen !== this.generation) throw SUPERSEDED;
      if (token === this.token) throw new ConnectError("the token was not renewed", Code.Unauthenticated);
      newToken = token;
      cursor = this.deps.getCursor();
      frames = this.open(token, cursor, abort);
      first = await frames.next();
      if (gen !== this.generation) throw SUPERSEDED;
      const w = first.done || first.value.frame.case !== "welcome" ? undefined : first.value.frame.value;
      if (w === undefined) throw new ConnectError("the renewed stream sent no welcome", Code.Unavailable);
      if (!renewalTaken(endsAt, w.expireTime === undefined ? undefined : timestampMs(w.expireTime))) {
        throw new ConnectError("the token was not renewed", Code.Unauthenticated);
      }
      same = seamless(w.resume, identityOf(w) === identityOf(current));
    } catch {
      abort.abort();
      if (this.successor === abort) this.successor = undefined;
      if (gen === this.generation) this.scheduleRenew(current, gen, tries + 1);
      return;
    } finally {
      clearTimeout(timer);
    }
    // Switch: the old stream's later frames are dropped (its generation is
    // over); the new one replays them from the cursor.
    this.successor = undefined;
    this.token = newToken;
    const old = this.abort;
    const next = ++this.generation;
    this.clearTimers();
    this.abort = abort;
    old?.abort();
    // A successor for another user, household or rooms (the token changed
    // identity), or one that could not resume, is a fresh stream: its
    // status names the new identity.
    await this.consume(frames, first, next, abort, cursor, same);
  }

  /** failed handles the end of the current attempt's stream. */
  private failed(err: unknown, abort: AbortController, sentCursor: string): void {
    if (this.watchdogTimer !== undefined) clearTimeout(this.watchdogTimer);
    this.watchdogTimer = undefined;
    this.cancelRenew();
    abort.abort();
    if (err === ENDED) {
      this.apply(this.decide("clean"), "the server ended the stream");
      return;
    }
    const ce = ConnectError.from(err);
    // Nobody is signed in: no fresh token will come until the app signs
    // someone in and calls connect().
    const end: EndKind = err instanceof NoTokenError ? "no-token" : "error";
    const d = this.decide(end, ce.code, sentCursor !== "");
    const shown = d.reason === "unavailable" ? ce.message : d.reason;
    this.apply(d, d.reason === "forbidden" || d.reason === "incompatible" ? ce.message : ce.rawMessage || shown);
  }

  /**
   * apply carries out a decision: a retry, at once or after a jittered
   * backoff delay (or giving up past maxAttempts), or a stop. `stalled`
   * says the stream went silent (watchdog).
   */
  private apply(d: Decision, message: string, stalled = false): void {
    this.unauthStreak = d.unauthStreak;
    if (d.refreshToken) this.forceRefresh = true;
    if (d.action === "stop") {
      this.giveUp(d.reason, message);
      return;
    }
    if (d.dropCursor) this.deps.onInvalidCursor();
    if (d.ceilingMs > 0 && d.attempt > this.options.maxAttempts) {
      this.giveUp(d.reason, `${message} (gave up after ${d.attempt - 1} retries)`);
      return;
    }
    const r = Math.min(Math.max(this.options.random(), 0), 1);
    this.attempt = d.attempt - 1; // scheduleRetry counts it
    this.scheduleRetry(Math.round(r * d.ceilingMs), d.reason, message, stalled);
  }

  private scheduleRetry(delayMs: number, reason: ErrorReason, message: string, stalled = false): void {
    this.attempt++;
    const retryAt = Date.now() + delayMs;
    this.retryAt = retryAt;
    if (!this.deps.env.isOnline()) {
      this.deps.onStatus({ state: "error", reason: "offline", message: "the browser is offline", retryAt });
    } else {
      this.deps.onStatus({
        state: "reconnecting",
        attempt: this.attempt,
        delayMs,
        retryAt,
        reason,
        message,
        ...(stalled ? { stalled } : {}),
      });
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
    this.apply(this.decide("error", Code.Unavailable), "the browser went offline");
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

/** identityOf names whose events a stream carries: its user, household and set of rooms. */
export function identityOf(w: Welcome): string {
  return [w.userId, w.householdId, ...[...w.rooms].sort()].join("\u0000");
}
