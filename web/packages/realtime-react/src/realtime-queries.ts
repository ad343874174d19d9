import {
  hashKey,
  useQueryClient,
  type dataTagSymbol,
  type Query,
  type QueryClient,
  type QueryFilters,
  type QueryKey,
} from "@tanstack/react-query";
import type { EventCase, EventPayload, RealtimeClient } from "@honeydo/realtime";
import type { Event } from "@honeydo/realtime/gen/honeydo/realtime/v1/realtime_pb";
import { useCallback, useEffect, useRef } from "react";
import { useRealtimeClient } from "./realtime-provider.js";
import { useLatest } from "./use-latest.js";

/**
 * EventPatch computes a cached query's next data from an event. It must be
 * pure and idempotent — applying an event twice gives what applying it once
 * does (compare versions, upsert by id) — because an event that arrives
 * while the query is fetching is applied again to the fetch's result, which
 * may or may not include the change already.
 */
export type EventPatch<C extends EventCase, TData> = (data: TData, payload: EventPayload<C>, event: Event) => TData;

/**
 * RealtimeQueryEvents says what each event case does to the cached queries:
 * a patch, or "invalidate" (refetch the active ones, mark the rest stale).
 * Cases not named are ignored.
 */
export type RealtimeQueryEvents<TData> = {
  readonly [C in EventCase]?: EventPatch<C, TData> | "invalidate";
};

/**
 * TaggedKey is a query key that may carry its data type, as the keys of
 * connect-query's `createConnectQueryKey` and TanStack's `queryOptions` do.
 */
export type TaggedKey<TData> = QueryKey & { readonly [dataTagSymbol]?: TData };

/** RealtimeQueriesOptions selects cached queries and says how events change them. */
export interface RealtimeQueriesOptions<TData> {
  /**
   * queryKey selects the queries as TanStack Query's filters do: every
   * query whose key starts with it (all of them when `exact`). A tagged key
   * types the patches' data; with a plain key, annotate the patches.
   */
  readonly queryKey: TaggedKey<TData>;
  readonly exact?: boolean;
  readonly events: RealtimeQueryEvents<TData>;
}

/** RealtimeQueries is a live binding made by {@link connectRealtimeQueries}. */
export interface RealtimeQueries<TData> {
  /**
   * patch applies `update` to the selected queries with the same care as
   * an event (again to the result of a fetch in flight). Use it for the
   * answer of this tab's own change: the client skips the event that the
   * change causes here.
   */
  patch(update: (data: TData) => TData): void;
  /** close stops listening to the client and the cache. */
  close(): void;
}

/** A patch stored under its case and only ever called with that case's payload. */
type StoredPatch<TData> = (data: TData, payload: never, event: Event) => TData;

/**
 * connectRealtimeQueries keeps TanStack Query caches in step with a
 * realtime stream:
 *
 * - each event named in `options.events` patches the selected queries that
 *   hold data, or invalidates them;
 * - a patch made while a query fetches is applied again to the fetch's
 *   result, so a response that was read before the change cannot undo it;
 * - a resync (the first stream, a failed resume: events may be missing)
 *   invalidates the selected queries, and a fetch in flight then is
 *   started again, since it may have read before the gap; `identity-changed` resets them
 *   instead, so the data of the previous user or household is never shown
 *   as the new one's.
 *
 * `options.events` is read at each event, so it may be replaced in place
 * (as {@link useRealtimeQueries} does); the set of cases is fixed here.
 */
export function connectRealtimeQueries<TData>(
  client: RealtimeClient,
  queryClient: QueryClient,
  options: RealtimeQueriesOptions<TData>,
): RealtimeQueries<TData> {
  const filters: QueryFilters = { queryKey: options.queryKey, exact: options.exact ?? false };
  const cache = queryClient.getQueryCache();
  // Patches made while a query was fetching, to apply again to the result.
  const replays = new Map<Query, ((data: TData) => TData)[]>();

  const patch = (update: (data: TData) => TData): void => {
    for (const query of cache.findAll(filters)) {
      if (query.state.fetchStatus !== "idle") replays.set(query, [...(replays.get(query) ?? []), update]);
      queryClient.setQueryData<TData>(query.queryKey, (data) => (data === undefined ? undefined : update(data)));
    }
  };

  // A fetch in flight may have read before the change or gap at hand, and
  // invalidating alone joins it when its query has no data yet. So the
  // fetches that invalidating refetches (the active queries') are cancelled
  // first: silently, back to the data they had, patches included.
  const refetchAnew = (): void => {
    void queryClient.cancelQueries({ ...filters, type: "active" }, { silent: true });
    void queryClient.invalidateQueries(filters);
  };

  const offCache = cache.subscribe((e) => {
    if (e.type === "removed") replays.delete(e.query);
    if (e.type !== "updated") return;
    const pending = replays.get(e.query);
    if (pending === undefined) return;
    // A fetch that ends otherwise (error, cancel) leaves the patched data in place.
    const fetched = e.action.type === "success" && e.action.manual !== true;
    if (fetched || e.query.state.fetchStatus === "idle") replays.delete(e.query);
    if (!fetched) return;
    try {
      queryClient.setQueryData<TData>(e.query.queryKey, (data) => {
        if (data === undefined) return undefined;
        let next: TData = data;
        for (const update of pending) next = update(next);
        return next;
      });
    } catch {
      // A patch that throws here threw at its event too (the client reported it there).
      void queryClient.invalidateQueries({ queryKey: e.query.queryKey, exact: true });
    }
  });

  const offs = (Object.keys(options.events) as EventCase[]).map((c) =>
    client.on(c, (payload, event) => {
      const how = options.events[c] as StoredPatch<TData> | "invalidate" | undefined;
      if (how === "invalidate") refetchAnew();
      else if (how !== undefined) patch((data) => how(data, payload as never, event));
    }),
  );
  offs.push(
    client.onResync((reason) => {
      if (reason === "identity-changed") {
        void queryClient.resetQueries(filters);
        return;
      }
      refetchAnew();
    }),
  );

  return {
    patch,
    close() {
      for (const off of offs) off();
      offCache();
      replays.clear();
    },
  };
}

/**
 * useRealtimeQueries applies the events of the nearest RealtimeProvider's
 * client to the cached queries of the nearest QueryClientProvider (see
 * {@link connectRealtimeQueries}) while the component is mounted, and
 * returns `patch` for the answers of this tab's own changes. The latest
 * `events` are used without resubscribing, so inline functions are fine.
 *
 * ```tsx
 * const patch = useRealtimeQueries({
 *   queryKey: createConnectQueryKey({ schema: ShoppingService.method.listItems, cardinality: "infinite" }),
 *   events: {
 *     itemAdded: (list, { item }) => (item ? withItem(list, item) : list),
 *     itemRemoved: (list, { itemId }) => withoutItem(list, itemId),
 *     settingUpdated: "invalidate",
 *   },
 * });
 * ```
 */
export function useRealtimeQueries<TData>(
  options: RealtimeQueriesOptions<TData>,
): (update: (data: TData) => TData) => void {
  const client = useRealtimeClient();
  const queryClient = useQueryClient();
  const latest = useLatest(options);
  const binding = useRef<RealtimeQueries<TData>>(undefined);
  const keyHash = hashKey(options.queryKey);
  const exact = options.exact ?? false;
  const cases = Object.keys(options.events).sort().join();
  useEffect(() => {
    const b = connectRealtimeQueries(client, queryClient, {
      queryKey: latest.current.queryKey,
      exact,
      get events() {
        return latest.current.events;
      },
    });
    binding.current = b;
    return () => {
      b.close();
      if (binding.current === b) binding.current = undefined;
    };
    // keyHash and cases stand for the key and the cases read through `latest`.
  }, [client, queryClient, keyHash, exact, cases, latest]);
  return useCallback(
    (update: (data: TData) => TData) => {
      if (binding.current !== undefined) return binding.current.patch(update);
      // Unmounted (e.g. a change answered after the list closed): a plain update.
      queryClient.setQueriesData<TData>({ queryKey: latest.current.queryKey, exact: latest.current.exact }, (data) =>
        data === undefined ? undefined : update(data),
      );
    },
    [queryClient, latest],
  );
}
