import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { SubscribeResponseSchema, type SubscribeResponse } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import type { StatusBody } from "./status.js";

/**
 * LockManagerLike is the part of the Web Locks API (navigator.locks) that
 * leader election needs. The callback holds the lock until the promise it
 * returns settles; an aborted signal withdraws a request still waiting.
 */
export interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<void>;
}

/** ChannelLike is the part of BroadcastChannel the tabs talk over. */
export interface ChannelLike {
  post(message: TabMessage): void;
  onMessage(fn: (data: unknown) => void): void;
  close(): void;
}

/** CrossTabOptions configure the sharing of one stream among tabs. */
export interface CrossTabOptions {
  /**
   * key scopes the sharing: tabs share a stream only when their keys match.
   * Use the signed-in user's id, so that two people signed in to two tabs of
   * one browser never share a stream. Default "default".
   */
  readonly key?: string;
  /** locks overrides navigator.locks (tests). */
  readonly locks?: LockManagerLike;
  /** channel overrides `new BroadcastChannel(name)` (tests). */
  readonly channel?: (name: string) => ChannelLike;
}

/** TabMessage is what tabs say to each other over the channel. */
export type TabMessage =
  /** A tab joined and asks the leader for its state. */
  | { readonly t: "hello"; readonly from: string }
  /**
   * The leader's answer to hello: its status, resume cursor and the stream's
   * user ("" before the first welcome).
   */
  | {
      readonly t: "state";
      readonly from: string;
      readonly status: StatusBody;
      readonly cursor: string;
      /** Absent from tabs of an older build. */
      readonly user?: string;
    }
  /** The leader's status changed. */
  | { readonly t: "status"; readonly from: string; readonly status: StatusBody }
  /** One stream frame, protobuf binary (SubscribeResponse). */
  | { readonly t: "frame"; readonly from: string; readonly frame: Uint8Array }
  /**
   * A follower asks the leader to retry now: `force` after the app called
   * connect() (e.g. signed in again), otherwise because the follower's tab
   * became visible or the browser came back online.
   */
  | { readonly t: "retry"; readonly from: string; readonly force: boolean }
  /** The leader is stepping down; another tab takes over. */
  | { readonly t: "bye"; readonly from: string };

const STATES = new Set(["idle", "connecting", "connected", "reconnecting", "disconnected", "error"]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function isStatusBody(v: unknown): v is StatusBody {
  return isRecord(v) && typeof v.state === "string" && STATES.has(v.state);
}

/** isTabMessage checks untrusted channel data. */
export function isTabMessage(v: unknown): v is TabMessage {
  if (!isRecord(v) || typeof v.from !== "string") return false;
  switch (v.t) {
    case "hello":
    case "bye":
      return true;
    case "retry":
      return typeof v.force === "boolean";
    case "state":
      return isStatusBody(v.status) && typeof v.cursor === "string" && (v.user === undefined || typeof v.user === "string");
    case "status":
      return isStatusBody(v.status);
    case "frame":
      return v.frame instanceof Uint8Array;
    default:
      return false;
  }
}

/** What the coordinator asks of, and tells, its client. */
export interface TabCoordinatorCallbacks {
  /** This tab won the election: open the stream. */
  becomeLeader(): void;
  /** (follower) The leader's status. */
  leaderStatus(status: StatusBody): void;
  /** (follower) The leader's resume cursor and stream user, when this tab joins. */
  leaderState(cursor: string, user: string): void;
  /** (follower) A frame of the leader's stream. */
  frame(frame: SubscribeResponse): void;
  /** (leader) A follower asks for an immediate retry. */
  retryRequested(force: boolean): void;
  /** (leader) The current status, cursor and stream user, for a tab that joins. */
  snapshot(): { status: StatusBody; cursor: string; user: string };
}

/** browserLocks returns navigator.locks where the browser has it. */
export function browserLocks(): LockManagerLike | undefined {
  if (typeof navigator === "undefined" || !("locks" in navigator) || navigator.locks === undefined) return undefined;
  const locks = navigator.locks;
  return {
    request: (name, options, callback) =>
      locks.request(name, options.signal ? { signal: options.signal } : {}, callback).then(() => undefined),
  };
}

/** browserChannel opens a BroadcastChannel, or returns undefined where there is none. */
export function browserChannel(name: string): ChannelLike | undefined {
  if (typeof BroadcastChannel === "undefined") return undefined;
  const bc = new BroadcastChannel(name);
  return {
    post: (m) => bc.postMessage(m),
    onMessage: (fn) => {
      bc.onmessage = (ev: MessageEvent<unknown>) => fn(ev.data);
    },
    close: () => bc.close(),
  };
}

/**
 * TabCoordinator elects one leader among the tabs that share a key and
 * relays the leader's stream to the others.
 *
 * Election uses one Web Lock per key: every tab that wants the stream asks
 * for it; the browser grants it to one tab at a time and, when that tab
 * closes (or crashes), to the next in line. The lock holder opens the stream
 * and posts each frame, in protobuf binary, on a BroadcastChannel; the
 * others decode and handle the frames as if they came from their own
 * stream, and keep the last cursor, so a new leader resumes where the old
 * one stopped.
 */
export class TabCoordinator {
  private channel: ChannelLike | undefined;
  private lockAbort: AbortController | undefined;
  private release: (() => void) | undefined;
  private leader = false;

  constructor(
    private readonly name: string,
    private readonly tabId: string,
    private readonly locks: LockManagerLike,
    private readonly openChannel: (name: string) => ChannelLike,
    private readonly cb: TabCoordinatorCallbacks,
  ) {}

  /** join opens the channel and stands for election. */
  join(): void {
    if (this.channel !== undefined) return;
    const channel = this.openChannel(this.name);
    this.channel = channel;
    channel.onMessage((data) => this.receive(data));
    channel.post({ t: "hello", from: this.tabId });
    const abort = new AbortController();
    this.lockAbort = abort;
    this.locks
      .request(this.name, { signal: abort.signal }, () => {
        if (abort.signal.aborted) return Promise.resolve();
        this.leader = true;
        const held = new Promise<void>((resolve) => {
          this.release = resolve;
        });
        this.cb.becomeLeader();
        return held;
      })
      .catch(() => {
        // Withdrawn with leave() before it was granted.
      });
  }

  /** leave steps down (the lock passes to the next tab) and closes the channel. */
  leave(): void {
    if (this.leader) this.channel?.post({ t: "bye", from: this.tabId });
    this.leader = false;
    this.lockAbort?.abort();
    this.lockAbort = undefined;
    this.release?.();
    this.release = undefined;
    this.channel?.close();
    this.channel = undefined;
  }

  /** publishFrame relays a frame of the leader's stream. */
  publishFrame(frame: SubscribeResponse): void {
    if (!this.leader) return;
    this.channel?.post({ t: "frame", from: this.tabId, frame: toBinary(SubscribeResponseSchema, frame) });
  }

  /** publishStatus relays the leader's status. */
  publishStatus(status: StatusBody): void {
    if (!this.leader) return;
    this.channel?.post({ t: "status", from: this.tabId, status });
  }

  /** requestRetry asks the leader to retry now; see the "retry" message. */
  requestRetry(force: boolean): void {
    if (!this.leader) this.channel?.post({ t: "retry", from: this.tabId, force });
  }

  private receive(data: unknown): void {
    if (!isTabMessage(data) || data.from === this.tabId) return;
    switch (data.t) {
      case "hello":
        if (this.leader) {
          const { status, cursor, user } = this.cb.snapshot();
          this.channel?.post({ t: "state", from: this.tabId, status, cursor, user });
        }
        return;
      case "retry":
        if (this.leader) this.cb.retryRequested(data.force);
        return;
    }
    // The rest comes from a leader; a leader ignores other leaders' late
    // messages (its own stream resumed from its own cursor).
    if (this.leader) return;
    switch (data.t) {
      case "state":
        this.cb.leaderState(data.cursor, data.user ?? "");
        this.cb.leaderStatus(data.status);
        return;
      case "status":
        this.cb.leaderStatus(data.status);
        return;
      case "frame":
        this.cb.frame(fromBinary(SubscribeResponseSchema, data.frame));
        return;
      case "bye":
        this.cb.leaderStatus({ state: "connecting", attempt: 0 });
        return;
    }
  }
}
