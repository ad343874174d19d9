import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Realtimed } from "@honeydo/realtime-testing";
import { devTokenProvider } from "./dev-token.js";
import { RealtimeClient } from "./realtime-client.js";
import { NoTokenError, type TokenProvider } from "./auth.js";

let srv: Realtimed;
beforeAll(async () => {
  srv = await Realtimed.launch();
});
afterAll(async () => {
  await srv.dispose();
});

test("a unary call rejected as UNAUTHENTICATED is retried once with a fresh token", async () => {
  const real = devTokenProvider({ baseUrl: srv.baseUrl, user: "alice", household: "home" });
  const asked: boolean[] = [];
  const getToken: TokenProvider = (req) => {
    asked.push(req.forceRefresh);
    return req.forceRefresh ? real(req) : "stale-token";
  };
  const client = new RealtimeClient({ baseUrl: srv.baseUrl, getToken, crossTab: false });
  expect((await client.whoAmI()).userId).toBe("alice");
  expect(asked).toEqual([false, true]);
});

test("a unary call without a token fails as UNAUTHENTICATED without reaching the server", async () => {
  const client = new RealtimeClient({ baseUrl: srv.baseUrl, getToken: () => null, crossTab: false });
  const err = await client.ping().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConnectError);
  expect(err instanceof ConnectError && err.code).toBe(Code.Unauthenticated);
});

test("NoTokenError is the missing token only, not any ConnectError (such as the server's rejection)", async () => {
  const rejected = new RealtimeClient({ baseUrl: srv.baseUrl, getToken: () => "not-a-token", crossTab: false });
  const err = await rejected.ping().catch((e: unknown) => e);
  expect(err instanceof ConnectError && err.code).toBe(Code.Unauthenticated);
  expect(err).not.toBeInstanceOf(NoTokenError);
  const signedOut = new RealtimeClient({ baseUrl: srv.baseUrl, getToken: () => null, crossTab: false });
  expect(await signedOut.ping().catch((e: unknown) => e)).toBeInstanceOf(NoTokenError);
});
