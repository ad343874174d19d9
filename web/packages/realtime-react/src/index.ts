export { RealtimeProvider, useRealtimeClient, type RealtimeProviderProps } from "./realtime-provider.js";
export { useRealtimeEvent, useRealtimeResync, useRealtimeService, useRealtimeStatus } from "./hooks.js";
export {
  useConnectionStatus,
  type ConnectionStatusView,
  type UseConnectionStatusOptions,
} from "./use-connection-status.js";
export {
  CONNECTION_STATUS_LABELS,
  ConnectionStatus,
  type ConnectionStatusLabels,
  type ConnectionStatusProps,
} from "./connection-status.js";
