import { createContext, useContext, type ReactNode } from "react";
import type { RealtimeClient } from "@honeydo/realtime";

const RealtimeContext = createContext<RealtimeClient | undefined>(undefined);

/** RealtimeProviderProps: the client to share, created once by the app. */
export interface RealtimeProviderProps {
  /**
   * client is created once (outside render, or in useState's initializer)
   * and kept for the session: the provider never builds transports.
   */
  readonly client: RealtimeClient;
  readonly children?: ReactNode;
}

/**
 * RealtimeProvider makes a {@link RealtimeClient} available to the hooks
 * below it. It does not connect by itself: the stream opens with the first
 * hook that listens (status, event or resync) and closes after the last.
 */
export function RealtimeProvider({ client, children }: RealtimeProviderProps): ReactNode {
  return <RealtimeContext.Provider value={client}>{children}</RealtimeContext.Provider>;
}

/**
 * useRealtimeClient returns the client of the nearest RealtimeProvider and
 * throws when there is none.
 */
export function useRealtimeClient(): RealtimeClient {
  const client = useContext(RealtimeContext);
  if (client === undefined) {
    throw new Error(
      "useRealtimeClient: no <RealtimeProvider> above this component. " +
        "Wrap the app in <RealtimeProvider client={client}> (see web/README.md).",
    );
  }
  return client;
}
