import { afterAll, beforeAll, expect, test } from "vitest";
import { Realtimed } from "@honeydo/realtime-testing";
import { devTokenProvider } from "./dev-token.js";
import { RealtimeClient } from "./realtime-client.js";

let srv: Realtimed;
beforeAll(async () => {
  srv = await Realtimed.launch();
});
afterAll(async () => {
  await srv.dispose();
});

/** recording passes every request through to the real server and notes its URL. */
function recording(): { urls: string[]; fetch: typeof globalThis.fetch } {
  const urls: string[] = [];
  return {
    urls,
    fetch: (input, init) => {
      urls.push(String(input instanceof Request ? input.url : input));
      return globalThis.fetch(input, init);
    },
  };
}

test("devTokenProvider mints from /dev/token, caches until near expiry, refreshes on demand", async () => {
  const net = recording();
  const get = devTokenProvider({ baseUrl: srv.baseUrl, user: "alice", household: "home", fetch: net.fetch });
  const [a, b] = await Promise.all([get({ forceRefresh: false }), get({ forceRefresh: false })]);
  expect(a).toBe(b); // one request for concurrent callers
  expect(await get({ forceRefresh: false })).toBe(a);
  await get({ forceRefresh: true });
  expect(net.urls).toEqual([
    `${srv.baseUrl}/dev/token?user=alice&household=home&ttl=10m`,
    `${srv.baseUrl}/dev/token?user=alice&household=home&ttl=10m`,
  ]);
  // The server accepts what it minted, for the right person.
  const client = new RealtimeClient({ baseUrl: srv.baseUrl, getToken: get, crossTab: false });
  expect(await client.whoAmI()).toMatchObject({ userId: "alice", householdId: "home" });
});

test("devTokenProvider does not reuse a token about to expire", async () => {
  const net = recording();
  // 10 s tokens are always within the default 30 s refresh margin.
  const get = devTokenProvider({ baseUrl: srv.baseUrl, user: "bob", household: "home", ttl: "10s", fetch: net.fetch });
  await get({ forceRefresh: false });
  await get({ forceRefresh: false });
  expect(net.urls).toHaveLength(2);
});

test("devTokenProvider reports HTTP errors", async () => {
  const get = devTokenProvider({ baseUrl: srv.baseUrl, user: "not a valid id!", household: "home" });
  await expect(get({ forceRefresh: false })).rejects.toThrow("GET /dev/token: HTTP 400");
});
