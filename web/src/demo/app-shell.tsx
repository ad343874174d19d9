import { LogOut, ShoppingBasket } from "lucide-react";
import type { ReactNode } from "react";
import { useRealtimeClient } from "@honeydo/realtime-react";
import { ConnectionBadge } from "./connection-badge";
import { colorOf, type Session } from "./session";

/** AppShell is the header (brand, connection, person) around the page. */
export function AppShell({ session, children }: { session: Session; children: ReactNode }): ReactNode {
  const client = useRealtimeClient();
  const signOut = (): void => {
    // Close the stream first, so the server sees it end right away.
    client.disconnect();
    void session.signOut();
  };
  return (
    <div className="shell">
      <header className="topbar">
        <div className="topbar__inner">
          <div className="brand">
            <span className="brand__mark" aria-hidden="true">
              <ShoppingBasket size={20} />
            </span>
            <span className="brand__text">
              <span className="brand__name">HoneyDo</span>
              <span className="brand__household">{session.householdName}</span>
            </span>
          </div>
          <div className="topbar__right">
            <ConnectionBadge onSignInAgain={signOut} />
            <div className="me" title={`Signed in as ${session.displayName}`}>
              <span className="avatar" style={{ background: colorOf(session.userId) }} aria-hidden="true">
                {session.displayName.slice(0, 1).toUpperCase()}
              </span>
              <span className="me__name" data-testid="signed-in-user">
                {session.displayName}
              </span>
            </div>
            <button type="button" className="icon-button" aria-label="Sign out" title="Sign out" onClick={signOut}>
              <LogOut size={18} aria-hidden="true" />
            </button>
          </div>
        </div>
      </header>
      <main className="content">{children}</main>
    </div>
  );
}
