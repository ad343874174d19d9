import { lazy, Suspense, type ReactNode } from "react";
import { DevApp } from "./dev-auth";
import { ToastProvider } from "./toasts";

// Clerk's SDK is only downloaded when a publishable key was built in.
const ClerkApp = lazy(() => import("./clerk-auth"));

/**
 * App is the demo: Clerk sign-in when VITE_CLERK_PUBLISHABLE_KEY is set at
 * build time, otherwise the dev user picker (for `realtimed --dev`).
 */
export function App({ clerkPublishableKey }: { clerkPublishableKey?: string | undefined }): ReactNode {
  return (
    <ToastProvider>
      {clerkPublishableKey ? (
        <Suspense fallback={<div className="splash" aria-busy="true" />}>
          <ClerkApp publishableKey={clerkPublishableKey} />
        </Suspense>
      ) : (
        <DevApp />
      )}
    </ToastProvider>
  );
}
