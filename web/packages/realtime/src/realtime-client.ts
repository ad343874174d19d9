import type { DescService } from "@bufbuild/protobuf";
import { createClient, type CallOptions, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  RealtimeService,
  type Event,
  type PingResponse,
  type SubscribeResponse,
  type WhoAmIResponse,
} from "./gen/honeydo/realtime/v1/realtime_pb.js";
import { authInterceptor } from "./auth.js";
import { CalmStatus } from "./calm-status.js";
import { withCallTimeout } from "./call-timeout.js";
import { DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS } from "./backoff.js";
import type { RealtimeClientOptions } from "./client-options.js";
import { browserEnvironment, type BrowserEnvironment } from "./environment.js";
import { listenerIterator } from "./event-iterator.js";
import {
  EventHub,
  type AnyEventHandler,
  type EventCase,
  type EventHandler,
  type ResyncHandler,
  type ResyncReason,
} from "./events.js";
import { Listeners } from "./listeners.js";
import { isOwnEvent, originInterceptor } from "./origin.js";
import { RecentIds } from "./recent-ids.js";
import { RECONNECT } from "./reconnect-policy.js";
import { ResyncPolicy } from "./resync.js";
import { Retention } from "./retention.js";
import { withRole, type RealtimeStatus, type StatusBody } from "./status.js";
import { StreamLoop } from "./stream-loop.js";
import { TabRoles } from "./tab-roles.js";

/** StatusListener is told the new status after every change. */
export type StatusListener = (status: RealtimeStatus) => void;

/** EventsOptions configure one {@link RealtimeClient.events} iteration. */
export interface EventsOptions {
  /** signal ends the iteration when it aborts (the loop simply ends; nothing is thrown). */
  readonly signal?: AbortSignal;
}

let tabCounter = 0;

function newTabId(): string {
  const c = typeof crypto !== "undefined" && "randomUUID" in crypto ? crypto.randomUUID() : String(Math.random());
  return `${c}-${++tabCounter}`;
}

/**
 * RealtimeClient is the framework-free browser client of RealtimeService.
 *
 * It is a subscribable object: the stream opens with the first listener
 * (status, event, resync, or an `events()` loop) and closes shortly after
 * the last one leaves, unless connect() holds it open. disconnect() closes
 * it (logout) until connect() is called again; dispose() closes it for
 * good and lets every listener go.
 *
 * ```ts
 * using client = new RealtimeClient({ baseUrl, getToken });
 * const off = client.on("itemAdded", (added, event) => render(added.item));
 * client.onStatusChange((s) => console.log(s.state));
 * for await (const event of client.events({ signal })) console.log(event.payload.case);
 * ```
 *
 * Everything runs on the page's event loop; listeners are called
 * synchronously, in the order they were added. The parts, each in its own
 * module: {@link StreamLoop} keeps one stream open, {@link TabRoles} shares
 * it among tabs, {@link ResyncPolicy} says when to refetch, {@link Retention}
 * says when the stream is wanted, {@link CalmStatus} says what to show.
 */
export class RealtimeClient {
  /** transport is the authenticated transport every service client shares. */
  readonly transport: Transport;
  /** realtime is the typed RealtimeService client (ping, whoAmI, publish). */
  readonly realtime: Client<typeof RealtimeService>;

  private status: RealtimeStatus = { state: "idle", role: "solo" };
  private readonly statusListeners: Listeners<[RealtimeStatus]>;
  private readonly resyncHandlers: Listeners<[ResyncReason]>;
  /** Ends every events() iteration (dispose). */
  private readonly iterationEnds: Listeners<[]>;
  private readonly hub: EventHub;
  private readonly services = new Map<string, Client<DescService>>();
  private readonly seen = new RecentIds();
  private readonly resync = new ResyncPolicy();
  private readonly loop: StreamLoop;
  private readonly calm: CalmStatus;
  private readonly tabs: TabRoles;
  private readonly retention: Retention;
  private readonly env: BrowserEnvironment;
  private readonly onError: (err: unknown) => void;
  private readonly tabId = newTabId();
  /** The stream's user (from the welcome), to tell this tab's own events. */
  private user = "";
  private cursor: string;
  private stoppedByApp = false;
  private disposed = false;
  private active = false;
  private envUnsubscribe: (() => void)[] = [];

  constructor(options: RealtimeClientOptions) {
    this.env = options.environment ?? browserEnvironment();
    this.onError = options.onError ?? ((err: unknown) => console.error("realtime: handler failed:", err));
    this.statusListeners = new Listeners(this.onError);
    this.resyncHandlers = new Listeners(this.onError);
    this.iterationEnds = new Listeners(this.onError);
    this.hub = new EventHub(this.onError);
    this.cursor = options.resumeCursor ?? "";
    const interceptors = [authInterceptor(options.getToken), originInterceptor(this.tabId)];
    this.transport = withCallTimeout(
      options.transport?.(interceptors) ??
        createConnectTransport({
          baseUrl: options.baseUrl,
          useBinaryFormat: true,
          interceptors,
          ...(options.fetch ? { fetch: options.fetch } : {}),
        }),
      options.callTimeoutMs ?? RECONNECT.callTimeoutMs,
    );
    this.realtime = createClient(RealtimeService, this.transport);
    this.retention = new Retention(
      {
        start: () => this.start(),
        idle: () => {
          if (!this.active) return;
          this.stop();
          this.setStatus({ state: "idle", role: this.status.role });
        },
      },
      options.stopDelayMs ?? 1000,
    );
    this.tabs = new TabRoles(options.crossTab, this.tabId, {
      openStream: () => this.loop.start(),
      retryRequested: (force) => {
        if (!force) this.loop.kick();
        else if (this.failing()) this.loop.retry();
      },
      leaderStatus: (body) => this.followLeader(body),
      leaderState: (cursor, user) => {
        this.cursor = cursor;
        if (user !== "") this.user = user;
      },
      leaderFrame: (frame) => this.handleFrame(frame, false),
      snapshot: () => ({ status: stripRole(this.status), cursor: this.cursor, user: this.user }),
    });
    this.calm = new CalmStatus((body) => {
      this.tabs.relayStatus(body);
      this.setStatus(withRole(body, this.tabs.role));
    }, options.quietReconnectMs ?? 1000);
    this.loop = new StreamLoop(
      {
        rpc: this.realtime,
        getToken: options.getToken,
        env: this.env,
        getCursor: () => this.cursor,
        onFrame: (frame) => {
          this.tabs.relayFrame(frame);
          this.handleFrame(frame, true);
        },
        onStatus: (body) => this.calm.push(body),
        onInvalidCursor: () => {
          this.cursor = "";
          this.resync.cursorRejected();
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
   * onStatusChange calls listener after every status change and keeps the
   * stream open while registered. Returns the function that unregisters it.
   */
  onStatusChange(listener: StatusListener): () => void {
    this.assertUsable("onStatusChange");
    return this.retention.retain(this.statusListeners.add(listener));
  }

  // ---- events -------------------------------------------------------------

  /**
   * on calls handler for every event whose payload is `c`, with the typed
   * payload and the whole event, and keeps the stream open while
   * registered. Returns the function that unregisters it.
   */
  on<C extends EventCase>(c: C, handler: EventHandler<C>): () => void {
    this.assertUsable("on");
    return this.retention.retain(this.hub.on(c, handler));
  }

  /** onEvent calls handler for every event. Returns the function that unregisters it. */
  onEvent(handler: AnyEventHandler): () => void {
    this.assertUsable("onEvent");
    return this.retention.retain(this.hub.onAny(handler));
  }

  /**
   * events returns every event, in order, as an async iterable, and keeps
   * the stream open while the iteration runs. The iteration starts
   * listening at once (events that arrive before the first `next()` are
   * kept), and ends, without throwing, when `signal` aborts, when the loop
   * `break`s or returns, or when the client is disposed. Events the loop
   * body has not taken yet are buffered.
   *
   * ```ts
   * const ac = new AbortController();
   * for await (const event of client.events({ signal: ac.signal })) {
   *   if (event.payload.case === "itemAdded") render(event.payload.value.item);
   * }
   * ```
   *
   * Resyncs are not events: keep an {@link onResync} handler beside the loop.
   */
  events(options: EventsOptions = {}): AsyncIterableIterator<Event> {
    this.assertUsable("events");
    return listenerIterator<Event>((push, end) => {
      const offEnd = this.iterationEnds.add(end);
      const off = this.retention.retain(this.hub.onAny(push));
      return () => {
        offEnd();
        off();
      };
    }, options.signal);
  }

  /**
   * onResync calls handler when the app must refetch its state: when the
   * first stream starts, when a resume failed because the server's
   * history no longer covers the cursor, and when a new stream serves
   * another user, household or rooms (`identity-changed`). Returns the
   * function that unregisters it.
   */
  onResync(handler: ResyncHandler): () => void {
    this.assertUsable("onResync");
    return this.retention.retain(this.resyncHandlers.add(handler));
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
    this.assertUsable("connect");
    this.stoppedByApp = false;
    this.retention.setHeld(true);
    if (!this.active) {
      this.start();
      return;
    }
    this.retryFailing();
  }

  /**
   * retryNow reconnects at once if the stream is failing (waiting to retry,
   * or given up), as a "Retry now" button asks; otherwise it does nothing.
   * Unlike connect() it does not hold the stream open.
   */
  retryNow(): void {
    if (this.active) this.retryFailing();
  }

  /**
   * disconnect closes the stream at once, so the server sees it end, and
   * keeps it closed whatever listeners come and go, until connect().
   * The status becomes "disconnected". Listeners stay registered.
   */
  disconnect(): void {
    this.stoppedByApp = true;
    this.retention.setHeld(false);
    this.stop();
    this.setStatus({ state: "disconnected", role: this.tabs.role });
  }

  /**
   * dispose closes the stream at once (status "disconnected", told to the
   * status listeners one last time), ends every `events()` iteration and
   * unregisters every listener. The client cannot be used again: its
   * listening methods and connect() throw; unregister functions still
   * work. Calling dispose again does nothing. Also `using client = …`.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disconnect();
    this.disposed = true;
    this.iterationEnds.emit();
    this.iterationEnds.clear();
    this.statusListeners.clear();
    this.resyncHandlers.clear();
    this.hub.clear();
  }

  /** [Symbol.dispose] is dispose(), for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
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

  private assertUsable(method: string): void {
    if (this.disposed) throw new Error(`realtime: ${method}() on a disposed RealtimeClient`);
  }

  private start(): void {
    if (this.active || this.stoppedByApp || this.disposed) return;
    this.active = true;
    this.envUnsubscribe = [
      this.env.onOnline(() => this.kick()),
      this.env.onVisible(() => this.kick()),
      this.env.onOffline(() => this.loop.noteOffline()),
    ];
    if (this.tabs.shared) this.setStatus({ state: "connecting", attempt: 0, role: "follower" });
    this.tabs.start();
  }

  /** failing is true while the stream is down (waiting to retry, or given up). */
  private failing(): boolean {
    return this.status.state === "error" || this.status.state === "reconnecting";
  }

  /** retryFailing retries at once if failing; a follower asks the leader, which decides. */
  private retryFailing(): void {
    if (this.tabs.role === "follower") this.tabs.askLeader(true);
    else if (this.failing()) this.loop.retry();
  }

  /**
   * kick retries a failing stream at once (browser back online, tab
   * visible). A follower's tab may be the visible one while the leader's is
   * hidden, so a follower asks the leader.
   */
  private kick(): void {
    if (this.tabs.role === "follower") {
      if (this.failing()) this.tabs.askLeader(false);
    } else {
      this.loop.kick();
    }
  }

  private stop(): void {
    this.retention.cancelStop();
    if (!this.active) return;
    this.active = false;
    for (const off of this.envUnsubscribe) off();
    this.envUnsubscribe = [];
    this.loop.stop();
    this.calm.reset();
    this.tabs.stop();
    this.resync.streamStopped();
  }

  private followLeader(body: StatusBody): void {
    if (this.tabs.role !== "follower" || !this.active) return;
    const shown: StatusBody =
      body.state === "idle" || body.state === "disconnected" ? { state: "connecting", attempt: 0 } : body;
    if (shown.state === "connected") this.emitResync(this.resync.leaderConnected());
    this.setStatus(withRole(shown, "follower"));
  }

  private handleFrame(frame: SubscribeResponse, ownStream: boolean): void {
    switch (frame.frame.case) {
      case "welcome": {
        const w = frame.frame.value;
        this.cursor = w.cursor;
        this.user = w.userId;
        this.emitResync(this.resync.welcome(w, ownStream));
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

  private emitResync(reason: ResyncReason | undefined): void {
    if (reason !== undefined) this.resyncHandlers.emit(reason);
  }

  private setStatus(status: RealtimeStatus): void {
    this.status = status;
    this.statusListeners.emit(status);
  }
}

function stripRole(status: RealtimeStatus): StatusBody {
  const { role: _role, ...body } = status;
  return body as StatusBody;
}
