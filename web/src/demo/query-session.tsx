import { TransportProvider } from "@connectrpc/connect-query";
import { QueryClient, QueryClientProvider, type DefaultOptions } from "@tanstack/react-query";
import { useState, type ReactNode } from "react";
import { useRealtimeClient } from "@honeydo/realtime-react";

/** QUERY_DEFAULTS fit a cache that realtime events keep fresh (useRealtimeQueries). */
const QUERY_DEFAULTS: DefaultOptions = {
  queries: {
    // Events patch the cache and resyncs refetch it: nothing goes stale by
    // time, window focus or the browser's online event.
    staleTime: Infinity,
    refetchOnWindowFocus: false,
    refetchOnReconnect: false,
    // A failed load says so at once; the list fetches again when the stream is back.
    retry: false,
    // The RealtimeClient knows when the network is gone: calls fail and say
    // why instead of waiting, paused, for the browser's online event.
    networkMode: "always",
  },
  mutations: { networkMode: "always" },
};

/**
 * QuerySession gives the signed-in person's components a TanStack Query
 * cache of their own, and connect-query the realtime client's transport, so
 * that every call carries the session's token and this tab's origin (the
 * events a call causes are skipped here and reach the person's other tabs).
 * Mount it under the session's RealtimeProvider.
 */
export function QuerySession({ children }: { children: ReactNode }): ReactNode {
  const client = useRealtimeClient();
  const [queryClient] = useState(() => new QueryClient({ defaultOptions: QUERY_DEFAULTS }));
  return (
    <TransportProvider transport={client.transport}>
      <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>
    </TransportProvider>
  );
}
