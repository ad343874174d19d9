import type { ReactNode } from "react";
import { AppShell } from "./app-shell";
import { RealtimeSession } from "./realtime-session";
import type { Session } from "./session";
import { ShoppingListView } from "./shopping/shopping-list";
import { NotificationToasts } from "./toasts";

/** SignedInApp is everything a signed-in person sees, on their own client. */
export function SignedInApp({ session }: { session: Session }): ReactNode {
  return (
    <RealtimeSession key={`${session.mode}:${session.userId}@${session.householdId}`} session={session}>
      <NotificationToasts />
      <AppShell session={session}>
        <ShoppingListView me={session.userId} />
      </AppShell>
    </RealtimeSession>
  );
}
