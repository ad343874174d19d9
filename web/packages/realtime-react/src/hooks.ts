import type { DescService } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { useCallback, useEffect, useSyncExternalStore } from "react";
import type { EventCase, EventHandler, RealtimeStatus, ResyncHandler } from "@honeydo/realtime";
import { useRealtimeClient } from "./realtime-provider.js";
import { useLatest } from "./use-latest.js";

/**
 * useRealtimeStatus returns the connection status and re-renders when it
 * changes. Reading the status counts as listening: it keeps the stream open.
 */
export function useRealtimeStatus(): RealtimeStatus {
  const client = useRealtimeClient();
  const subscribe = useCallback((onChange: () => void) => client.onStatusChange(onChange), [client]);
  const get = useCallback(() => client.getStatus(), [client]);
  return useSyncExternalStore(subscribe, get, get);
}

/**
 * useRealtimeEvent calls handler for every event whose payload is `c`,
 * with the typed payload and the whole event. The latest handler is used
 * without resubscribing, so an inline arrow function is fine; the
 * subscription ends when the component unmounts.
 *
 * ```tsx
 * useRealtimeEvent("itemAdded", ({ item }) => item && upsert(item));
 * ```
 */
export function useRealtimeEvent<C extends EventCase>(c: C, handler: EventHandler<C>): void {
  const client = useRealtimeClient();
  const latest = useLatest(handler);
  useEffect(() => client.on(c, (payload, event) => latest.current(payload, event)), [client, c, latest]);
}

/**
 * useRealtimeResync calls handler when the component's state must be
 * refetched: when the stream first starts and when a resume failed (the
 * server's history no longer covers what this browser missed).
 */
export function useRealtimeResync(handler: ResyncHandler): void {
  const client = useRealtimeClient();
  const latest = useLatest(handler);
  useEffect(() => client.onResync((reason) => latest.current(reason)), [client, latest]);
}

/**
 * useRealtimeService returns the typed client of a module's service on the
 * shared authenticated transport; the same object on every render.
 *
 * ```tsx
 * const shopping = useRealtimeService(ShoppingService);
 * await shopping.addItem({ name: "Milk" });
 * ```
 */
export function useRealtimeService<S extends DescService>(service: S): Client<S> {
  return useRealtimeClient().service(service);
}
