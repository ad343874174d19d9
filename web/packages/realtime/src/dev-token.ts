import type { TokenProvider } from "./auth.js";

/** DevTokenOptions configure {@link devTokenProvider}. */
export interface DevTokenOptions {
  /** Base URL of a `realtimed --dev` server, e.g. "http://127.0.0.1:8080". */
  readonly baseUrl: string;
  /** The user to mint tokens for, e.g. "alice". */
  readonly user: string;
  /** The household (organization) of the token, e.g. "home". */
  readonly household: string;
  /** Token lifetime as a Go duration, e.g. "10m". Default "10m". */
  readonly ttl?: string;
  /** A cached token is reused until this long before it expires. Default 30 s. */
  readonly refreshBeforeMs?: number;
  /** fetch to use; default globalThis.fetch. */
  readonly fetch?: typeof globalThis.fetch;
}

interface DevTokenResponse {
  token: string;
  expireTime: string;
}

function isDevTokenResponse(v: unknown): v is DevTokenResponse {
  return (
    typeof v === "object" &&
    v !== null &&
    "token" in v &&
    typeof v.token === "string" &&
    "expireTime" in v &&
    typeof v.expireTime === "string"
  );
}

/**
 * devTokenProvider returns a {@link TokenProvider} that mints tokens from a
 * `realtimed --dev` server's `GET /dev/token`. It caches the token until
 * shortly before it expires and shares one request among concurrent
 * callers. Dev mode only: a production server has no such endpoint.
 */
export function devTokenProvider(options: DevTokenOptions): TokenProvider {
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const refreshBefore = options.refreshBeforeMs ?? 30_000;
  let cached: { token: string; expiresAt: number } | undefined;
  let inflight: Promise<string> | undefined;

  const mint = async (): Promise<string> => {
    const url = new URL("/dev/token", options.baseUrl);
    url.searchParams.set("user", options.user);
    url.searchParams.set("household", options.household);
    url.searchParams.set("ttl", options.ttl ?? "10m");
    const res = await doFetch(url.toString(), { cache: "no-store" });
    if (!res.ok) throw new Error(`GET /dev/token: HTTP ${res.status}`);
    const body: unknown = await res.json();
    if (!isDevTokenResponse(body)) throw new Error("GET /dev/token: unexpected response");
    cached = { token: body.token, expiresAt: Date.parse(body.expireTime) };
    return body.token;
  };

  return ({ forceRefresh }) => {
    if (!forceRefresh && cached !== undefined && cached.expiresAt - Date.now() > refreshBefore) {
      return cached.token;
    }
    inflight ??= mint().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };
}
