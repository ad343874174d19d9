export { RealtimeClient, type RealtimeClientOptions, type StatusListener } from "./realtime-client";
export {
  describeStatus,
  type ConnectionState,
  type ErrorReason,
  type RealtimeStatus,
  type StatusBody,
  type TabRole,
} from "./status";
export type {
  AnyEventHandler,
  EventCase,
  EventHandler,
  EventPayload,
  ResyncHandler,
  ResyncReason,
} from "./events";
export { authInterceptor, NoTokenError, type TokenProvider, type TokenRequest } from "./auth";
export { ORIGIN_HEADER, originInterceptor } from "./origin";
export { devTokenProvider, type DevTokenOptions } from "./dev-token";
export {
  backoffCap,
  backoffDelay,
  DEFAULT_INITIAL_DELAY_MS,
  DEFAULT_MAX_DELAY_MS,
  type BackoffOptions,
} from "./backoff";
export type { BrowserEnvironment } from "./environment";
export type { ChannelLike, CrossTabOptions, LockManagerLike, TabMessage } from "./cross-tab";
