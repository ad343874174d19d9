import { ClerkProvider, SignIn, useAuth, useClerk, useOrganization, useUser } from "@clerk/clerk-react";
import { useMemo, type ReactNode } from "react";
import type { Session } from "./session";
import { SignedInApp } from "./signed-in-app";

/**
 * ClerkApp signs people in with Clerk. It is loaded only when the build
 * sets VITE_CLERK_PUBLISHABLE_KEY. The household is the active Clerk
 * organization (the server falls back to its --default-household without
 * one), and getToken is Clerk's, refreshed on demand after a rejection.
 */
export default function ClerkApp({ publishableKey }: { publishableKey: string }): ReactNode {
  return (
    <ClerkProvider publishableKey={publishableKey}>
      <ClerkGate />
    </ClerkProvider>
  );
}

function ClerkGate(): ReactNode {
  const { isLoaded, isSignedIn, userId, orgId, getToken } = useAuth();
  const { signOut } = useClerk();
  const { user } = useUser();
  const { organization } = useOrganization();
  const session = useMemo<Session | undefined>(() => {
    if (!isSignedIn || !userId) return undefined;
    return {
      mode: "clerk",
      userId,
      displayName: user?.firstName ?? user?.username ?? "You",
      householdId: orgId ?? "",
      householdName: organization?.name ?? "My household",
      getToken: ({ forceRefresh }) => getToken({ skipCache: forceRefresh }),
      signOut: () => signOut(),
    };
  }, [isSignedIn, userId, orgId, user, organization, getToken, signOut]);
  if (!isLoaded) return <div className="splash" aria-busy="true" />;
  if (!session) {
    return (
      <main className="welcome">
        <SignIn routing="hash" />
      </main>
    );
  }
  return <SignedInApp session={session} />;
}
