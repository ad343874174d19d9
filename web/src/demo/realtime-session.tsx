import { useLayoutEffect, useRef, useState, type ReactNode } from "react";
import { RealtimeClient, type TokenProvider } from "@honeydo/realtime";
import { RealtimeProvider } from "@honeydo/realtime-react";
import { QuerySession } from "./query-session";
import { apiBaseUrl, type Session } from "./session";

/**
 * RealtimeSession creates the session's RealtimeClient once and provides
 * it, with the session's query cache (QuerySession). Mount it with `key` set to the user, so that a different person gets
 * a different client. The client reads the latest getToken through a ref:
 * Clerk hands out a new function on some renders, which must not rebuild
 * the client or its transport.
 */
export function RealtimeSession({ session, children }: { session: Session; children: ReactNode }): ReactNode {
  const getTokenRef = useRef<TokenProvider>(session.getToken);
  useLayoutEffect(() => {
    getTokenRef.current = session.getToken;
  });
  const [client] = useState(
    () =>
      new RealtimeClient({
        baseUrl: apiBaseUrl(),
        getToken: (request) => getTokenRef.current(request),
        // Tabs share one stream per person and household.
        crossTab: { key: `${session.userId}@${session.householdId}` },
      }),
  );
  return (
    <RealtimeProvider client={client}>
      <QuerySession>{children}</QuerySession>
    </RealtimeProvider>
  );
}
