import type { RealtimeStatus } from "./status.js";

/**
 * StatusKind is which short label a status gets. It names only the states
 * worth telling a person: connecting (before the first welcome), live,
 * reconnecting, offline (no stream: idle, disconnected, or no network),
 * signed out (the server refused the credential) and error. Why, and what
 * happens next, are in {@link describeStatus}.
 */
export type StatusKind = "connecting" | "live" | "reconnecting" | "offline" | "signedOut" | "error";

/**
 * StatusTone is a status's colour in a badge: ok (live), busy (connecting),
 * warn (reconnecting), bad (an error) and off (no stream, nothing wrong).
 */
export type StatusTone = "ok" | "busy" | "warn" | "bad" | "off";

/** StatusLabels are the short label texts, one per {@link StatusKind}; replace them to translate. */
export type StatusLabels = { readonly [K in StatusKind]: string };

/** STATUS_LABELS are the English labels. */
export const STATUS_LABELS: StatusLabels = {
  connecting: "Connecting",
  live: "Live",
  reconnecting: "Reconnecting",
  offline: "Offline",
  signedOut: "Signed out",
  error: "Error",
};

/**
 * statusKind maps a status to its label's kind. This module's job is only
 * that mapping and the tone, the parts of a connection indicator that do
 * not depend on a UI framework.
 */
export function statusKind(status: RealtimeStatus): StatusKind {
  switch (status.state) {
    case "connected":
      return "live";
    case "connecting":
      return "connecting";
    case "reconnecting":
      return "reconnecting";
    case "idle":
    case "disconnected":
      return "offline";
    case "error":
      switch (status.reason) {
        case "offline":
          return "offline";
        case "unauthenticated":
          return "signedOut";
        default:
          return "error";
      }
  }
}

/** statusTone maps a status to its colour tone. */
export function statusTone(status: RealtimeStatus): StatusTone {
  switch (status.state) {
    case "connected":
      return "ok";
    case "connecting":
      return "busy";
    case "reconnecting":
      return "warn";
    case "idle":
    case "disconnected":
      return "off";
    case "error":
      return "bad";
  }
}
