export { RealtimeProvider, useRealtimeClient, type RealtimeProviderProps } from "./realtime-provider.js";
export { useRealtimeEvent, useRealtimeResync, useRealtimeService, useRealtimeStatus } from "./hooks.js";
export { ConnectionStatus, statusLook, type ConnectionStatusProps } from "./connection-status.js";
