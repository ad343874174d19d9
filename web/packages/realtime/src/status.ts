/**
 * Why a connection is failing, as the status reports it.
 *
 * - `unauthenticated`: the server rejected the token, or there is none.
 * - `offline`: the browser says it has no network.
 * - `unavailable`: the server could not be reached or dropped the stream.
 * - `forbidden`: the server refused this user the stream (PERMISSION_DENIED).
 * - `incompatible`: the server refused the request itself (UNIMPLEMENTED,
 *   INVALID_ARGUMENT, …): a wrong URL or a client older or newer than the
 *   server. Retrying would fail the same way.
 * - `invalid-cursor`: the server rejected the resume cursor; the client
 *   reconnects at once without it (a `reconnecting` status only).
 */
export type ErrorReason = "unauthenticated" | "offline" | "unavailable" | "forbidden" | "incompatible" | "invalid-cursor";

/**
 * Which part this tab plays in the cross-tab sharing of one stream.
 *
 * - `solo`: cross-tab sharing is off; this client holds its own stream.
 * - `leader`: this tab holds the stream and forwards its frames.
 * - `follower`: another tab of this browser holds the stream; the status
 *   shown is that tab's, relayed.
 */
export type TabRole = "solo" | "leader" | "follower";

/** The connection's state; see {@link RealtimeStatus}. */
export type ConnectionState = RealtimeStatus["state"];

/**
 * RealtimeStatus is the client's observable connection status. Values are
 * immutable: a change produces a new object, so `===` tells whether anything
 * changed (which is what React's useSyncExternalStore needs). Times are
 * milliseconds since the epoch, so a status can cross tabs as is.
 */
export type RealtimeStatus = { readonly role: TabRole } & (
  | {
      /** Nobody listens yet, so no stream is open. */
      readonly state: "idle";
    }
  | {
      /** A stream is being opened. `attempt` is 0 for the first try. */
      readonly state: "connecting";
      readonly attempt: number;
    }
  | {
      /** The stream is open and the welcome frame arrived. */
      readonly state: "connected";
      readonly since: number;
      readonly userId: string;
      readonly householdId: string;
    }
  | {
      /** The stream failed; the next try starts at `retryAt`. */
      readonly state: "reconnecting";
      /** 1 for the first retry after a failure, and so on. */
      readonly attempt: number;
      readonly delayMs: number;
      readonly retryAt: number;
      readonly reason: ErrorReason;
      readonly message: string;
      /**
       * The stream went silent for two heartbeat intervals (a frozen server
       * or a dead network path): the loss is already seconds old, so it is
       * shown at once rather than after the grace of a quick reconnect.
       */
      readonly stalled?: boolean;
    }
  | {
      /** The app called disconnect(); nothing happens until connect(). */
      readonly state: "disconnected";
    }
  | {
      /**
       * The client cannot connect on its own. With `retryAt` (offline) it
       * still tries again then, or as soon as the browser is back online;
       * without it (unauthenticated, forbidden, incompatible, or the attempt
       * limit reached) it waits for connect() (the attempt limit also for
       * the browser coming online or the tab becoming visible).
       */
      readonly state: "error";
      readonly reason: ErrorReason;
      readonly message: string;
      readonly retryAt?: number;
    }
);

/**
 * describeStatus returns a short human sentence for a status, e.g.
 * "Reconnecting in 3 s (attempt 2)". `now` defaults to Date.now().
 */
export function describeStatus(status: RealtimeStatus, now: number = Date.now()): string {
  const via = status.role === "follower" ? " (shared from another tab)" : "";
  switch (status.state) {
    case "idle":
      return "Not connected";
    case "connecting":
      return (status.attempt > 0 ? `Connecting (attempt ${status.attempt})` : "Connecting") + via;
    case "connected":
      return "Live: changes appear instantly" + via;
    case "reconnecting": {
      const seconds = Math.max(0, Math.ceil((status.retryAt - now) / 1000));
      const when = seconds > 0 ? `in ${seconds} s` : "now";
      return `Reconnecting ${when}, attempt ${status.attempt}: ${reasonText(status.reason)}` + via;
    }
    case "disconnected":
      return "Disconnected";
    case "error": {
      const retry =
        status.retryAt === undefined
          ? ""
          : `; retrying in ${Math.max(0, Math.ceil((status.retryAt - now) / 1000))} s`;
      return `${reasonText(status.reason)}${retry}` + via;
    }
  }
}

function reasonText(reason: ErrorReason): string {
  switch (reason) {
    case "unauthenticated":
      return "sign-in expired or rejected";
    case "offline":
      return "you are offline";
    case "unavailable":
      return "server unavailable";
    case "forbidden":
      return "the server refused access";
    case "incompatible":
      return "the server does not accept this app's requests (wrong address or version)";
    case "invalid-cursor":
      return "resume position rejected, starting fresh";
  }
}

/** StatusBody is a status without its tab role. */
export type StatusBody = RealtimeStatus extends infer S ? (S extends unknown ? Omit<S, "role"> : never) : never;

/** withRole adds a tab role to a status body. */
export function withRole(body: StatusBody, role: TabRole): RealtimeStatus {
  return { ...body, role } as RealtimeStatus;
}
