import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** TokenRequest tells a TokenProvider whether a cached token will do. */
export interface TokenRequest {
  /**
   * forceRefresh is true after the server rejected a token: return a new
   * one, not a cached copy (Clerk: `getToken({ skipCache: true })`).
   */
  readonly forceRefresh: boolean;
}

/**
 * TokenProvider returns the bearer token for the next call, or null when
 * nobody is signed in. It is called before every stream (re)connect and
 * before unary calls, so it should cache (Clerk's getToken does).
 */
export type TokenProvider = (request: TokenRequest) => Promise<string | null | undefined> | string | null | undefined;

/** NoTokenError is raised when the TokenProvider has no token to give. */
export class NoTokenError extends ConnectError {
  constructor() {
    super("no token: not signed in", Code.Unauthenticated);
  }

  /**
   * ConnectError's `instanceof` accepts anything shaped like a ConnectError
   * (to work across realms), which would make every ConnectError a
   * NoTokenError; this one follows the prototype chain.
   */
  static override [Symbol.hasInstance](v: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, v);
  }
}

/** bearer formats an Authorization header value. */
export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/** fetchToken calls a TokenProvider and turns "no token" into NoTokenError. */
export async function fetchToken(provider: TokenProvider, request: TokenRequest): Promise<string> {
  const token = await provider(request);
  if (token === null || token === undefined || token === "") throw new NoTokenError();
  return token;
}

/**
 * authInterceptor sets `Authorization: Bearer <token>` on every call that
 * does not carry one yet. A unary call rejected with UNAUTHENTICATED is
 * retried once with a freshly fetched token.
 */
export function authInterceptor(provider: TokenProvider): Interceptor {
  return (next) => async (req) => {
    if (req.header.has("Authorization")) return next(req);
    req.header.set("Authorization", bearer(await fetchToken(provider, { forceRefresh: false })));
    if (req.stream) return next(req);
    try {
      return await next(req);
    } catch (err) {
      if (!(err instanceof ConnectError) || err.code !== Code.Unauthenticated) throw err;
      req.header.set("Authorization", bearer(await fetchToken(provider, { forceRefresh: true })));
      return next(req);
    }
  };
}
