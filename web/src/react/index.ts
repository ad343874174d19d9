export { RealtimeProvider, useRealtimeClient, type RealtimeProviderProps } from "./realtime-provider";
export { useRealtimeEvent, useRealtimeResync, useRealtimeService, useRealtimeStatus } from "./hooks";
export { ConnectionStatus, statusLook, type ConnectionStatusProps } from "./connection-status";
