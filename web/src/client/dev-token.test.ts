import { expect, test } from "vitest";
import { devTokenProvider } from "./dev-token";

function fakeServer(ttlMs: number) {
  const calls: string[] = [];
  let n = 0;
  const fetch: typeof globalThis.fetch = async (input) => {
    calls.push(String(input));
    await new Promise((r) => setTimeout(r, 5));
    return new Response(
      JSON.stringify({ token: `t${++n}`, expireTime: new Date(Date.now() + ttlMs).toISOString() }),
      { headers: { "Content-Type": "application/json" } },
    );
  };
  return { calls, fetch };
}

test("devTokenProvider mints from /dev/token, caches until near expiry, refreshes on demand", async () => {
  const srv = fakeServer(10 * 60_000);
  const get = devTokenProvider({ baseUrl: "http://dev.test:8080", user: "alice", household: "home", fetch: srv.fetch });
  const [a, b] = await Promise.all([get({ forceRefresh: false }), get({ forceRefresh: false })]);
  expect([a, b]).toEqual(["t1", "t1"]); // one request for concurrent callers
  expect(await get({ forceRefresh: false })).toBe("t1");
  expect(await get({ forceRefresh: true })).toBe("t2");
  expect(srv.calls).toEqual([
    "http://dev.test:8080/dev/token?user=alice&household=home&ttl=10m",
    "http://dev.test:8080/dev/token?user=alice&household=home&ttl=10m",
  ]);
});

test("devTokenProvider does not reuse a token about to expire", async () => {
  const srv = fakeServer(10_000);
  const get = devTokenProvider({ baseUrl: "http://x", user: "bob", household: "home", ttl: "10s", fetch: srv.fetch });
  expect(await get({ forceRefresh: false })).toBe("t1");
  expect(await get({ forceRefresh: false })).toBe("t2");
});

test("devTokenProvider reports HTTP errors", async () => {
  const get = devTokenProvider({
    baseUrl: "http://x",
    user: "bob",
    household: "home",
    fetch: async () => new Response("no", { status: 404 }),
  });
  await expect(get({ forceRefresh: false })).rejects.toThrow("GET /dev/token: HTTP 404");
});
