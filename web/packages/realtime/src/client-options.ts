import type { Interceptor, Transport } from "@connectrpc/connect";
import type { TokenProvider } from "./auth.js";
import type { CrossTabOptions } from "./cross-tab.js";
import type { BrowserEnvironment } from "./environment.js";

/** RealtimeClientOptions configure a {@link RealtimeClient}. */
export interface RealtimeClientOptions {
  /** baseUrl of the server, e.g. "https://rt.example.com" or window.location.origin. */
  readonly baseUrl: string;
  /** getToken is asked for a token before every (re)connect and unary call. */
  readonly getToken: TokenProvider;
  /** Cap of the first retry's delay (full jitter below it). Default 1000 ms. */
  readonly initialDelayMs?: number;
  /** Largest delay between tries. Default 5000 ms. */
  readonly maxDelayMs?: number;
  /** Retries before the status turns to error. Default Infinity: never give up. */
  readonly maxAttempts?: number;
  /**
   * Consecutive UNAUTHENTICATED failures (no welcome in between) that turn
   * the status to error instead of retrying. The first one is retried at once
   * with a fresh token, since it usually means the token just expired.
   * Default 2.
   */
  readonly maxUnauthenticated?: number;
  /**
   * The stream is dead after this many heartbeat intervals of silence.
   * Default 2: with the server's default 4 s heartbeat, a frozen server or
   * a dead network path shows within 8 s.
   */
  readonly watchdogFactor?: number;
  /** Longest wait for the welcome frame. Default 10000 ms. */
  readonly connectTimeoutMs?: number;
  /** Heartbeat interval assumed when the welcome frame has none. Default 4000 ms. */
  readonly defaultHeartbeatMs?: number;
  /**
   * Unary calls (ping, whoAmI, module services) with no timeout of their
   * own fail with DEADLINE_EXCEEDED after this long. Default 10000 ms; 0
   * for none.
   */
  readonly callTimeoutMs?: number;
  /**
   * The next stream opens, with a fresh token, this long before the server
   * would end the current one at its token's expiry (plus grace), so that
   * the connection outlives every token. Default 10000 ms.
   */
  readonly renewLeadMs?: number;
  /**
   * A stream that ends and is back within this long changes no status.
   * Default 1000 ms.
   */
  readonly quietReconnectMs?: number;
  /**
   * crossTab shares one stream among the tabs of a browser (Web Locks +
   * BroadcastChannel). Default true where both exist; false gives every
   * client its own stream.
   */
  readonly crossTab?: boolean | CrossTabOptions;
  /** The stream closes this long after the last listener left. Default 1000 ms. */
  readonly stopDelayMs?: number;
  /**
   * transport builds the transport instead of the default connect-web one
   * (binary format), e.g. for other transport options. It gets the
   * client's interceptors, which attach the token and this tab's origin;
   * pass them on, or calls go unauthenticated and this tab's own changes
   * come back to it as events.
   */
  readonly transport?: (interceptors: Interceptor[]) => Transport;
  /** fetch for the default transport; default globalThis.fetch. */
  readonly fetch?: typeof globalThis.fetch;
  /** environment overrides online/visibility detection (tests). */
  readonly environment?: BrowserEnvironment;
  /** random in [0, 1) for the backoff jitter. Default Math.random. */
  readonly random?: () => number;
  /**
   * resumeCursor to send with the first stream, e.g. one the app saved (with
   * its state) from `client.resumeCursor` in sessionStorage. The server
   * replays what came after it, and no `initial` resync fires when it could;
   * a cursor it rejects is dropped, with an `invalid-cursor` resync. Default
   * none: the first stream starts fresh.
   */
  readonly resumeCursor?: string;
  /** onError receives exceptions thrown by event and resync handlers. Default console.error. */
  readonly onError?: (err: unknown) => void;
}
