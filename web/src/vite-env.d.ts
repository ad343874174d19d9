/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Clerk publishable key (pk_...): when set at build time, the demo signs in with Clerk. */
  readonly VITE_CLERK_PUBLISHABLE_KEY?: string;
  /** Base URL of realtimed when it is not the page's own origin. */
  readonly VITE_REALTIME_URL?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
