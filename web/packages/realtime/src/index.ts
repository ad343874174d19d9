export { RealtimeClient, type EventsOptions, type StatusListener } from "./realtime-client.js";
export type { RealtimeClientOptions } from "./client-options.js";
export {
  describeStatus,
  type ConnectionState,
  type ErrorReason,
  type RealtimeStatus,
  type StatusBody,
  type TabRole,
} from "./status.js";
export { STATUS_LABELS, statusKind, statusTone, type StatusKind, type StatusLabels, type StatusTone } from "./status-label.js";
export type {
  AnyEventHandler,
  EventCase,
  EventHandler,
  EventPayload,
  ResyncHandler,
  ResyncReason,
} from "./events.js";
export { authInterceptor, NoTokenError, type TokenProvider, type TokenRequest } from "./auth.js";
export { ORIGIN_HEADER, originInterceptor } from "./origin.js";
export { devTokenProvider, type DevTokenOptions } from "./dev-token.js";
export {
  backoffCap,
  backoffDelay,
  DEFAULT_INITIAL_DELAY_MS,
  DEFAULT_MAX_DELAY_MS,
  type BackoffOptions,
} from "./backoff.js";
export type { BrowserEnvironment } from "./environment.js";
export type { ChannelLike, CrossTabOptions, LockManagerLike, TabMessage } from "./cross-tab.js";
