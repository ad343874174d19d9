import type { DescService } from "@bufbuild/protobuf";
import { createClient, type CallOptions, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  RealtimeService,
  ResumeStatus,
  type PingResponse,
  type SubscribeResponse,
  type WhoAmIResponse,
} from "./gen/honeydo/realtime/v1/realtime_pb.js";
import { authInterceptor, type TokenProvider } from "./auth.js";
import { CalmStatus } from "./calm-status.js";
import { withCallTimeout } from "./call-timeout.js";
import { DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS } from "./backoff.js";
import {
  browserChannel,
  browserLocks,
  TabCoordinator,
  type ChannelLike,
  type CrossTabOptions,
  type LockManagerLike,
} from "./cross-tab.js";
import { browserEnvironment, type BrowserEnvironment } from "./environment.js";
import {
  EventHub,
  type AnyEventHandler,
  type EventCase,
  type EventHandler,
  type ResyncHandler,
  type ResyncReason,
} from "./events.js";
import { isOwnEvent, originInterceptor } from "./origin.js";
import { RecentIds } from "./recent-ids.js";
import { RECONNECT } from "./reconnect-policy.js";
import { withRole, type RealtimeStatus, type StatusBody, type TabRole } from "./status.js";
import { identityOf, StreamLoop } from "./stream-loop.js";

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
   * transport overrides the default connect-web transport (binary format).
   * Give it `originInterceptor(client.origin)`, or this tab's own changes
   * come back to it as events.
   */
  readonly transport?: Transport;
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

/** StatusListener is told the new status after every change. */
export type StatusListener = (status: RealtimeStatus) => void;

let tabCounter = 0;

function newTabId(): string {
  const c = typeof crypto !== "undefined" && "randomUUID" in crypto ? crypto.randomUUID() : String(Math.random());
  return `${c}-${++tabCounter}`;
}

/**
 * RealtimeClient is the framework-free browser client of RealtimeService.
 *
 * It is a subscribable object: the stream opens with the first listener
 * (status, event or resync) and closes shortly after the last one leaves,
 * unless connect() holds it open. disconnect() closes it for good (logout)
 * until connect() is called again.
 *
 * ```ts
 * const client = new RealtimeClient({ baseUrl, getToken });
 * const off = client.on("itemAdded", (added, event) => render(added.item));
 * client.subscribe((s) => console.log(s.state));
 * ```
 *
 * Everything runs on the page's event loop; listeners are called
 * synchronously, in the order they were added.
 */
export class RealtimeClient {
  /** transport is the authenticated transport every service client shares. */
  readonly transport: Transport;
  /** realtime is the typed RealtimeService client (ping, whoAmI, publish). */
  readonly realtime: Client<typeof RealtimeService>;

  private status: RealtimeStatus = { state: "idle", role: "solo" };
  private readonly statusListeners = new Set<StatusListener>();
  private readonly hub: EventHub;
  private readonly resyncHandlers = new Set<ResyncHandler>();
  private readonly services = new Map<string, Client<DescService>>();
  private readonly seen = new RecentIds();
  private readonly loop: StreamLoop;
  private readonly calm: CalmStatus;
  private readonly env: BrowserEnvironment;
  private readonly onError: (err: unknown) => void;
  private readonly stopDelayMs: number;
  private readonly crossTab: { name: string; locks: LockManagerLike; channel: (name: string) => ChannelLike } | undefined;
  private readonly tabId = newTabId();
  /** The stream's user (from the welcome), to tell this tab's own events. */
  private user = "";

  private cursor: string;
  private synced = false;
  /** The last welcome's identity (see identityOf). */
  private identity: string | undefined;
  /** A resync to report at the next welcome of this tab's own stream. */
  private pendingResync: ResyncReason | undefined;
  private refs = 0;
  private held = false;
  private stoppedByApp = false;
  private active = false;
  private role: TabRole = "solo";
  private coordinator: TabCoordinator | undefined;
  private stopTimer: ReturnType<typeof setTimeout> | undefined;
  private envUnsubscribe: (() => void)[] = [];

  constructor(options: RealtimeClientOptions) {
    this.env = options.environment ?? browserEnvironment();
    this.onError = options.onError ?? ((err: unknown) => console.error("realtime: handler failed:", err));
    this.stopDelayMs = options.stopDelayMs ?? 1000;
    this.cursor = options.resumeCursor ?? "";
    this.hub = new EventHub(this.onError);
    this.transport = withCallTimeout(
      options.transport ??
        createConnectTransport({
          baseUrl: options.baseUrl,
          useBinaryFormat: true,
          interceptors: [authInterceptor(options.getToken), originInterceptor(this.tabId)],
          ...(options.fetch ? { fetch: options.fetch } : {}),
        }),
      options.callTimeoutMs ?? RECONNECT.callTimeoutMs,
    );
    this.realtime = createClient(RealtimeService, this.transport);
    this.crossTab = resolveCrossTab(options.crossTab);
    this.calm = new CalmStatus((body) => {
      if (this.role === "leader") this.coordinator?.publishStatus(body);
      this.setStatus(withRole(body, this.role));
    }, options.quietReconnectMs ?? 1000);
    this.loop = new StreamLoop(
      {
        rpc: this.realtime,
        getToken: options.getToken,
        env: this.env,
        getCursor: () => this.cursor,
        onFrame: (frame) => {
          if (this.role === "leader") this.coordinator?.publishFrame(frame);
          this.handleFrame(frame, true);
        },
        onStatus: (body) => this.calm.push(body),
        onInvalidCursor: () => {
          this.cursor = "";
          this.pendingResync = "invalid-cursor";
        },
      },
      {
        backoff: {
          initialDelayMs: options.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS,
          maxDelayMs: options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS,
        },
        maxAttempts: options.maxAttempts ?? Number.POSITIVE_INFINITY,
        maxUnauthenticated: options.maxUnauthenticated ?? RECONNECT.maxUnauthenticated,
        watchdogFactor: options.watchdogFactor ?? RECONNECT.watchdogFactor,
        connectTimeoutMs: options.connectTimeoutMs ?? RECONNECT.connectTimeoutMs,
        defaultHeartbeatMs: options.defaultHeartbeatMs ?? RECONNECT.defaultHeartbeatMs,
        renewLeadMs: options.renewLeadMs ?? RECONNECT.renewLeadMs,
        random: options.random ?? Math.random,
      },
    );
  }

  // ---- status -------------------------------------------------------------

  /** getStatus returns the current status; the same object until it changes. */
  getStatus(): RealtimeStatus {
    return this.status;
  }

  /**
   * subscribe calls listener after every status change and keeps the stream
   * open while subscribed. Returns the unsubscribe function.
   */
  subscribe(listener: StatusListener): () => void {
    this.statusListeners.add(listener);
    return this.retain(() => this.statusListeners.delete(listener));
  }

  // ---- events -------------------------------------------------------------

  /**
   * on calls handler for every event whose payload is `c`, with the typed
   * payload and the whole event, and keeps the stream open while
   * subscribed. Returns the unsubscribe function.
   */
  on<C extends EventCase>(c: C, handler: EventHandler<C>): () => void {
    return this.retain(this.hub.on(c, handler));
  }

  /** onEvent calls handler for every event. Returns the unsubscribe function. */
  onEvent(handler: AnyEventHandler): () => void {
    return this.retain(this.hub.onAny(handler));
  }

  /**
   * onResync calls handler when the app must refetch its state: when the
   * first stream starts, when a resume failed because the server's
   * history no longer covers the cursor, and when a new stream serves
   * another user, household or rooms (`identity-changed`). Returns the
   * unsubscribe function.
   */
  onResync(handler: ResyncHandler): () => void {
    this.resyncHandlers.add(handler);
    return this.retain(() => this.resyncHandlers.delete(handler));
  }

  /** resumeCursor is the cursor of the last event handled (or of the welcome). */
  get resumeCursor(): string {
    return this.cursor;
  }

  /**
   * origin identifies this client (one per tab) to the server: every unary
   * call on {@link transport} sends it, the events those calls cause carry
   * it, and this client skips them (it has the calls' answers) while every
   * other tab and device, the same person's included, receives them. No
   * module relays its own changes.
   */
  get origin(): string {
    return this.tabId;
  }

  // ---- lifecycle ----------------------------------------------------------

  /**
   * connect keeps the stream open even without listeners, and undoes
   * disconnect(). After an error (e.g. a rejected token) it retries at once.
   */
  connect(): void {
    this.stoppedByApp = false;
    this.held = true;
    if (!this.active) {
      this.start();
      return;
    }
    if (this.role === "follower") this.coordinator?.requestRetry(true);
    else if (this.failing()) this.loop.retry();
  }

  /**
   * retryNow reconnects at once if the stream is failing (waiting to retry,
   * or given up), as a "Retry now" button asks; otherwise it does nothing.
   * Unlike connect() it does not hold the stream open.
   */
  retryNow(): void {
    if (!this.active) return;
    if (this.role === "follower") this.coordinator?.requestRetry(true);
    else if (this.failing()) this.loop.retry();
  }

  /**
   * disconnect closes the stream at once, so the server sees it end, and
   * keeps it closed whatever listeners come and go, until connect().
   * The status becomes "disconnected". Listeners stay registered.
   */
  disconnect(): void {
    this.stoppedByApp = true;
    this.held = false;
    this.stop();
    this.setStatus({ state: "disconnected", role: this.role });
  }

  // ---- unary --------------------------------------------------------------

  /** ping is an authenticated round trip; returns the server's clock. */
  ping(options?: CallOptions): Promise<PingResponse> {
    return this.realtime.ping({}, options);
  }

  /** whoAmI returns who the server thinks the caller is. */
  whoAmI(options?: CallOptions): Promise<WhoAmIResponse> {
    return this.realtime.whoAmI({}, options);
  }

  /**
   * service returns the typed client of a module's service on the shared
   * authenticated transport, the same object for the same service every time.
   */
  service<S extends DescService>(desc: S): Client<S> {
    let c = this.services.get(desc.typeName);
    if (c === undefined) {
      c = createClient(desc, this.transport);
      this.services.set(desc.typeName, c);
    }
    // Cached under the service's own type name, so it is a Client<S>.
    return c as Client<S>;
  }

  // ---- internals ----------------------------------------------------------

  private retain(release: () => void): () => void {
    this.refs++;
    if (this.stopTimer !== undefined) {
      clearTimeout(this.stopTimer);
      this.stopTimer = undefined;
    }
    this.start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      this.refs--;
      if (this.refs === 0 && !this.held && this.active) {
        this.stopTimer = setTimeout(() => {
          this.stopTimer = undefined;
          if (this.refs === 0 && !this.held && this.active) {
            this.stop();
            this.setStatus({ state: "idle", role: this.status.role });
          }
        }, this.stopDelayMs);
      }
    };
  }

  private start(): void {
    if (this.active || this.stoppedByApp) return;
    this.active = true;
    this.envUnsubscribe = [
      this.env.onOnline(() => this.kick()),
      this.env.onVisible(() => this.kick()),
      this.env.onOffline(() => this.loop.noteOffline()),
    ];
    if (this.crossTab === undefined) {
      this.role = "solo";
      this.loop.start();
      return;
    }
    this.role = "follower";
    this.setStatus({ state: "connecting", attempt: 0, role: "follower" });
    this.coordinator = new TabCoordinator(this.crossTab.name, this.tabId, this.crossTab.locks, this.crossTab.channel, {
      becomeLeader: () => {
        if (!this.active) return;
        this.role = "leader";
        this.loop.start();
      },
      leaderStatus: (body) => this.followLeader(body),
      leaderState: (cursor, user) => {
        this.cursor = cursor;
        if (user !== "") this.user = user;
      },
      frame: (frame) => this.handleFrame(frame, false),
      retryRequested: (force) => {
        if (!force) this.loop.kick();
        else if (this.failing()) this.loop.retry();
      },
      snapshot: () => ({ status: stripRole(this.status), cursor: this.cursor, user: this.user }),
    });
    this.coordinator.join();
  }

  /** failing is true while the stream is down (waiting to retry, or given up). */
  private failing(): boolean {
    return this.status.state === "error" || this.status.state === "reconnecting";
  }

  /**
   * kick retries a failing stream at once (browser back online, tab
   * visible). A follower's tab may be the visible one while the leader's is
   * hidden, so a follower asks the leader.
   */
  private kick(): void {
    if (this.role === "follower") {
      if (this.failing()) this.coordinator?.requestRetry(false);
    } else {
      this.loop.kick();
    }
  }

  private stop(): void {
    if (this.stopTimer !== undefined) {
      clearTimeout(this.stopTimer);
      this.stopTimer = undefined;
    }
    if (!this.active) return;
    this.active = false;
    for (const off of this.envUnsubscribe) off();
    this.envUnsubscribe = [];
    this.loop.stop();
    this.calm.reset();
    this.coordinator?.leave();
    this.coordinator = undefined;
    this.synced = false;
  }

  private followLeader(body: StatusBody): void {
    if (this.role !== "follower" || !this.active) return;
    const shown: StatusBody =
      body.state === "idle" || body.state === "disconnected" ? { state: "connecting", attempt: 0 } : body;
    if (shown.state === "connected" && !this.synced) {
      this.synced = true;
      this.emitResync("initial");
    }
    this.setStatus(withRole(shown, "follower"));
  }

  private handleFrame(frame: SubscribeResponse, ownStream: boolean): void {
    switch (frame.frame.case) {
      case "welcome": {
        const w = frame.frame.value;
        this.cursor = w.cursor;
        this.user = w.userId;
        // A cursor resumes on whatever rooms the token grants, so a stream
        // of another household can say RESUMED: the identity decides.
        const identity = identityOf(w);
        const moved = this.synced && this.identity !== undefined && identity !== this.identity;
        this.identity = identity;
        if (moved) {
          if (ownStream) this.pendingResync = undefined;
          this.emitResync("identity-changed");
          return;
        }
        switch (w.resume) {
          case ResumeStatus.EXPIRED:
            this.synced = true;
            this.emitResync("expired");
            break;
          case ResumeStatus.EPOCH_CHANGED:
            this.synced = true;
            this.emitResync("epoch-changed");
            break;
          case ResumeStatus.RESUMED:
            this.synced = true;
            break;
          default:
            // A fresh stream (no cursor was sent).
            if (ownStream && this.pendingResync !== undefined) {
              const reason = this.pendingResync;
              this.pendingResync = undefined;
              this.synced = true;
              this.emitResync(reason);
            } else if (!this.synced) {
              this.synced = true;
              this.emitResync("initial");
            } else if (!ownStream) {
              // The leader's stream started without a cursor although this
              // tab had one: the leader dropped a cursor the server rejected.
              this.emitResync("invalid-cursor");
            }
        }
        return;
      }
      case "events":
        for (const event of frame.frame.value.events) {
          const fresh = this.seen.add(event.id);
          if (fresh || ownStream) this.cursor = event.cursor;
          // This tab's own call caused it and already has the answer; its
          // other tabs and the person's other devices apply it.
          if (fresh && !isOwnEvent(event, this.tabId, this.user)) this.hub.dispatch(event);
        }
        return;
      default:
        return;
    }
  }

  private emitResync(reason: ResyncReason): void {
    for (const h of [...this.resyncHandlers]) {
      try {
        h(reason);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  private setStatus(status: RealtimeStatus): void {
    this.status = status;
    for (const l of [...this.statusListeners]) {
      try {
        l(status);
      } catch (err) {
        this.onError(err);
      }
    }
  }
}

function stripRole(status: RealtimeStatus): StatusBody {
  const { role: _role, ...body } = status;
  return body as StatusBody;
}

function resolveCrossTab(
  opt: boolean | CrossTabOptions | undefined,
): { name: string; locks: LockManagerLike; channel: (name: string) => ChannelLike } | undefined {
  if (opt === false) return undefined;
  const o: CrossTabOptions = opt === true || opt === undefined ? {} : opt;
  const locks = o.locks ?? browserLocks();
  const channel = o.channel ?? (typeof BroadcastChannel === "undefined" ? undefined : browserChannel);
  if (locks === undefined || channel === undefined) return undefined;
  const open = (name: string): ChannelLike => {
    const c = channel(name);
    if (c === undefined) throw new Error("realtime: BroadcastChannel is not available");
    return c;
  };
  return { name: `honeydo-realtime:${o.key ?? "default"}`, locks, channel: open };
}
