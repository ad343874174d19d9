import type { SubscribeResponse } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import {
  browserChannel,
  browserLocks,
  TabCoordinator,
  type ChannelLike,
  type CrossTabOptions,
  type LockManagerLike,
} from "./cross-tab.js";
import type { StatusBody, TabRole } from "./status.js";

/** What a {@link TabRoles} asks of the client, by role. */
export interface TabRolesHost {
  /** (solo, leader) Open this tab's own stream. */
  openStream(): void;
  /** (leader) A follower tab asks for a retry: `force` after a click, else a hint (online, visible). */
  retryRequested(force: boolean): void;
  /** (follower) The leader's status, as the leader shows it. */
  leaderStatus(status: StatusBody): void;
  /** (follower) The leader's resume cursor and stream user, when this tab joins. */
  leaderState(cursor: string, user: string): void;
  /** (follower) A frame of the leader's stream. */
  leaderFrame(frame: SubscribeResponse): void;
  /** (leader) This tab's status, cursor and stream user, for a tab that joins. */
  snapshot(): { status: StatusBody; cursor: string; user: string };
}

/** The resolved cross-tab settings: where to elect and talk. */
interface CrossTab {
  readonly name: string;
  readonly locks: LockManagerLike;
  readonly channel: (name: string) => ChannelLike;
}

/**
 * TabRoles decides which part this client plays in sharing one stream among
 * the tabs of a browser, and does that part. Its job is the roles, not the
 * protocol (that is {@link TabCoordinator}'s):
 *
 * - `solo` (sharing off or unsupported): open the stream at once.
 * - `follower` until the election says otherwise: no stream of its own;
 *   show the leader's status, handle its relayed frames, ask it to retry.
 * - `leader` once this tab wins: open the stream and relay its frames and
 *   status to the followers.
 */
export class TabRoles {
  private current: TabRole = "solo";
  private coordinator: TabCoordinator | undefined;
  private active = false;
  private readonly crossTab: CrossTab | undefined;

  constructor(
    options: boolean | CrossTabOptions | undefined,
    private readonly tabId: string,
    private readonly host: TabRolesHost,
  ) {
    this.crossTab = resolveCrossTab(options);
  }

  /** role is this client's part right now. */
  get role(): TabRole {
    return this.current;
  }

  /** shared is true when this client takes part in cross-tab sharing (it starts as a follower). */
  get shared(): boolean {
    return this.crossTab !== undefined;
  }

  /** start takes up this client's part: opens the stream (solo) or stands for election (follower). */
  start(): void {
    if (this.active) return;
    this.active = true;
    if (this.crossTab === undefined) {
      this.current = "solo";
      this.host.openStream();
      return;
    }
    this.current = "follower";
    const host = this.host;
    this.coordinator = new TabCoordinator(this.crossTab.name, this.tabId, this.crossTab.locks, this.crossTab.channel, {
      becomeLeader: () => {
        if (!this.active) return;
        this.current = "leader";
        host.openStream();
      },
      leaderStatus: (body) => host.leaderStatus(body),
      leaderState: (cursor, user) => host.leaderState(cursor, user),
      frame: (frame) => host.leaderFrame(frame),
      retryRequested: (force) => host.retryRequested(force),
      snapshot: () => host.snapshot(),
    });
    this.coordinator.join();
  }

  /** stop gives up the part: a leader steps down so that another tab takes over. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    this.coordinator?.leave();
    this.coordinator = undefined;
  }

  /** relayFrame passes a frame of this tab's stream to the followers (leader only). */
  relayFrame(frame: SubscribeResponse): void {
    if (this.current === "leader") this.coordinator?.publishFrame(frame);
  }

  /** relayStatus passes this tab's status to the followers (leader only). */
  relayStatus(body: StatusBody): void {
    if (this.current === "leader") this.coordinator?.publishStatus(body);
  }

  /** askLeader asks the leader tab to retry (follower only); see TabRolesHost.retryRequested. */
  askLeader(force: boolean): void {
    if (this.current === "follower") this.coordinator?.requestRetry(force);
  }
}

function resolveCrossTab(opt: boolean | CrossTabOptions | undefined): CrossTab | undefined {
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
