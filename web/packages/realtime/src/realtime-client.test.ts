import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { RealtimeService, type Event } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import { ShoppingService, type ShoppingItem } from "./gen/honeydo/shopping/v1/shopping_pb.js";
import { Notification_Level, NotificationSchema, ProbeSchema } from "./gen/honeydo/system/v1/events_pb.js";
import { FakeEnvironment, FlakyNetwork, Realtimed, SERVICE_KEY, sleep, waitFor } from "@honeydo/realtime-testing";
import {
  backoffCap,
  devTokenProvider,
  RealtimeClient,
  type RealtimeClientOptions,
  type RealtimeStatus,
  type ResyncReason,
  type TokenProvider,
} from "./index.js";

// Every test uses its own household, so tests sharing a server never see
// each other's events.
let householdSeq = 0;
const newHousehold = (): string => `h${Date.now().toString(36)}${++householdSeq}`;

const clients: RealtimeClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

function tokens(srv: Realtimed, user: string, household: string, ttl = "10m"): TokenProvider {
  return devTokenProvider({ baseUrl: srv.baseUrl, user, household, ttl });
}

function client(
  srv: Realtimed,
  user: string,
  household: string,
  extra: Partial<RealtimeClientOptions> = {},
): RealtimeClient {
  const c = new RealtimeClient({
    baseUrl: srv.baseUrl,
    getToken: tokens(srv, user, household),
    crossTab: false,
    stopDelayMs: 50,
    onError: (err) => {
      throw err;
    },
    ...extra,
  });
  clients.push(c);
  return c;
}

function statuses(c: RealtimeClient): RealtimeStatus[] {
  const seen: RealtimeStatus[] = [];
  c.onStatusChange((s) => seen.push(s));
  return seen;
}

function itemNames(c: RealtimeClient): string[] {
  const names: string[] = [];
  c.on("itemAdded", (added) => names.push(added.item?.name ?? "?"));
  return names;
}

const connected = (c: RealtimeClient): Promise<true> =>
  waitFor(`${c.getStatus().state} → connected`, () => c.getStatus().state === "connected", 10_000);

/** countingTokens wraps a provider and counts its calls and forced refreshes. */
function countingTokens(inner: TokenProvider): TokenProvider & { calls: number; forced: number } {
  const f = Object.assign(
    async (req: { forceRefresh: boolean }) => {
      f.calls++;
      if (req.forceRefresh) f.forced++;
      return inner(req);
    },
    { calls: 0, forced: 0 },
  );
  return f;
}

describe("against one realtimed", () => {
  let srv: Realtimed;
  beforeAll(async () => {
    srv = await Realtimed.launch({ heartbeat: "1s" });
  });
  afterAll(async () => {
    await srv.dispose();
  });

  test("delivers typed events in order to the household, not to the actor or another household", async () => {
    const home = newHousehold();
    const alice = client(srv, "alice", home);
    const bob = client(srv, "bob", home);
    const carol = client(srv, "carol", newHousehold());
    const aliceGot = itemNames(alice);
    const bobGot = itemNames(bob);
    const carolGot = itemNames(carol);
    const envelopes: Event[] = [];
    alice.onEvent((e) => envelopes.push(e));
    const resyncs: ResyncReason[] = [];
    alice.onResync((r) => resyncs.push(r));
    await Promise.all([connected(alice), connected(bob), connected(carol)]);
    expect(alice.getStatus()).toMatchObject({ state: "connected", userId: "alice", householdId: home, role: "solo" });
    expect(resyncs).toEqual(["initial"]);

    const shopping = bob.service(ShoppingService);
    expect(bob.service(ShoppingService)).toBe(shopping); // one client per service
    for (const name of ["Milk", "Eggs", "Bread", "Apples", "Oats"]) await shopping.addItem({ name });
    await waitFor("5 events", () => aliceGot.length === 5);
    expect(aliceGot).toEqual(["Milk", "Eggs", "Bread", "Apples", "Oats"]);
    expect(envelopes.every((e) => e.senderUserId === "bob" && e.payload.case === "itemAdded")).toBe(true);
    expect(alice.resumeCursor).toBe(envelopes.at(-1)?.cursor);
    await sleep(200);
    expect(bobGot).toEqual([]);
    expect(carolGot).toEqual([]);
  });

  test("typed handlers for updates, removals and system notifications; a throwing handler hurts nobody", async () => {
    const home = newHousehold();
    const errors: unknown[] = [];
    const alice = client(srv, "alice", home, { onError: (e) => errors.push(e) });
    const log: string[] = [];
    alice.on("itemUpdated", (u) => log.push(`updated ${u.item?.name} checked=${u.item?.checked} v${u.item?.version}`));
    alice.on("itemRemoved", (r) => log.push(`removed ${r.itemId === item.id}`));
    alice.on("notification", () => {
      throw new Error("boom");
    });
    alice.on("notification", (n, e) => log.push(`note ${n.level} ${n.message} from ${e.senderUserId || "system"}`));
    await connected(alice);

    const shopping = client(srv, "bob", home).service(ShoppingService);
    const added = await shopping.addItem({ name: "Tea" });
    const item: ShoppingItem = added.item ?? expect.unreachable();
    await shopping.updateItem({ itemId: item.id, checked: true, name: "Green tea" });
    await shopping.removeItem({ itemId: item.id });
    const publisher = createClient(
      RealtimeService,
      createConnectTransport({ baseUrl: srv.baseUrl, useBinaryFormat: true }),
    );
    await publisher.publish(
      {
        target: { to: { case: "householdId", value: home } },
        event: {
          payload: {
            case: "notification",
            value: create(NotificationSchema, { message: "Dinner at 7", level: Notification_Level.SUCCESS }),
          },
        },
      },
      { headers: { Authorization: `Bearer ${SERVICE_KEY}` } },
    );
    await waitFor("3 events", () => log.length === 3);
    expect(log).toEqual([
      "updated Green tea checked=true v2",
      "removed true",
      `note ${Notification_Level.SUCCESS} Dinner at 7 from system`,
    ]);
    expect(errors).toHaveLength(1);
    expect(alice.getStatus().state).toBe("connected");
  });

  test("probe events (load tests) pass through typed and reach only their own handlers", async () => {
    const home = newHousehold();
    const alice = client(srv, "alice", home); // onError throws: any handler failure fails the test
    const items = itemNames(alice);
    const probes: string[] = [];
    alice.on("probe", (p, e) => probes.push(`${p.seq}:${p.target}:${p.padding.length}:${e.senderUserId || "system"}`));
    const cases: (string | undefined)[] = [];
    alice.onEvent((e) => cases.push(e.payload.case));
    await connected(alice);
    const publisher = createClient(
      RealtimeService,
      createConnectTransport({ baseUrl: srv.baseUrl, useBinaryFormat: true }),
    );
    for (const seq of [0n, 1n]) {
      await publisher.publish(
        {
          target: { to: { case: "householdId", value: home } },
          event: {
            payload: {
              case: "probe",
              value: create(ProbeSchema, {
                seq,
                sendTimeUnixMicros: BigInt(Date.now()) * 1000n,
                target: `household:${home}`,
                padding: new Uint8Array(256),
              }),
            },
          },
        },
        { headers: { Authorization: `Bearer ${SERVICE_KEY}` } },
      );
    }
    await client(srv, "bob", home).service(ShoppingService).addItem({ name: "Tea" });
    await waitFor("3 events", () => cases.length === 3);
    expect(cases).toEqual(["probe", "probe", "itemAdded"]);
    expect(probes).toEqual([`0:household:${home}:256:system`, `1:household:${home}:256:system`]);
    expect(items).toEqual(["Tea"]);
    expect(alice.getStatus().state).toBe("connected");
  });

  test("unary helpers and module clients carry the token", async () => {
    const home = newHousehold();
    const alice = client(srv, "alice", home);
    const me = await alice.whoAmI();
    expect(me).toMatchObject({ userId: "alice", householdId: home, service: false });
    expect(me.rooms).toEqual(expect.arrayContaining(["user:alice", `household:${home}`, "broadcast"]));
    const pong = await alice.ping();
    expect(pong.time).toBeDefined();
    await alice.service(ShoppingService).addItem({ name: "Rice" });
    const list = await alice.service(ShoppingService).listItems({});
    expect(list.items.map((i) => i.name)).toEqual(["Rice"]);
    // Unary calls do not open a stream.
    expect(alice.getStatus().state).toBe("idle");
  });

  test("the stream starts with the first listener and stops after the last", async () => {
    const home = newHousehold();
    const alice = client(srv, "alice", home);
    expect(alice.getStatus().state).toBe("idle");
    const off1 = alice.on("itemAdded", () => {});
    const off2 = alice.onStatusChange(() => {});
    await connected(alice);
    await waitFor("1 stream", async () => (await srv.streams()).byUser.alice === 1);
    off1();
    await sleep(150);
    expect(alice.getStatus().state).toBe("connected"); // one listener left
    off2();
    off2(); // idempotent
    await waitFor("idle", () => alice.getStatus().state === "idle");
    await waitFor("stream closed", async () => !(await srv.streams()).byUser.alice);
  });

  test("disconnect() closes the stream at once and keeps it closed until connect()", async () => {
    const home = newHousehold();
    const getToken = countingTokens(tokens(srv, "dora", home));
    const dora = client(srv, "dora", home, { getToken });
    const seen = statuses(dora);
    await connected(dora);
    expect((await srv.streams()).byUser.dora).toBe(1);
    const t0 = Date.now();
    dora.disconnect();
    expect(dora.getStatus().state).toBe("disconnected");
    await waitFor("server sees the close", async () => !(await srv.streams()).byUser.dora, 1000, 10);
    expect(Date.now() - t0).toBeLessThan(1000);
    const calls = getToken.calls;
    const off = dora.on("itemAdded", () => {}); // new listeners do not reopen it
    await sleep(300);
    expect(getToken.calls).toBe(calls);
    expect(dora.getStatus().state).toBe("disconnected");
    expect(seen.at(-1)?.state).toBe("disconnected");
    dora.connect();
    await connected(dora);
    expect((await srv.streams()).byUser.dora).toBe(1);
    off();
  });

  test("resumes from its cursor after a network drop: every missed event once, in order", async () => {
    const home = newHousehold();
    const net = new FlakyNetwork();
    const alice = client(srv, "alice", home, { fetch: net.fetch, initialDelayMs: 300, maxDelayMs: 300 });
    const got = itemNames(alice);
    const resyncs: ResyncReason[] = [];
    alice.onResync((r) => resyncs.push(r));
    const shopping = client(srv, "bob", home).service(ShoppingService);
    await connected(alice);
    await shopping.addItem({ name: "before" });
    await waitFor("first event", () => got.length === 1);
    const cursor = alice.resumeCursor;
    expect(cursor).not.toBe("");

    net.cut();
    await waitFor("reconnecting", () => alice.getStatus().state === "reconnecting");
    for (let i = 1; i <= 10; i++) await shopping.addItem({ name: `missed ${i}` });
    net.restore();
    await waitFor("11 events", () => got.length >= 11, 10_000);
    await shopping.addItem({ name: "after" });
    await waitFor("12 events", () => got.length >= 12);
    await sleep(100);
    expect(got).toEqual(["before", ...Array.from({ length: 10 }, (_, i) => `missed ${i + 1}`), "after"]);
    expect(resyncs).toEqual(["initial"]); // resumed: no refetch needed
    expect(net.subscribeCursors[0]).toBe("");
    expect(net.subscribeCursors.slice(1)).toContain(cursor);
    expect(net.subscribeCursors.every((c, i) => i === 0 || c === cursor)).toBe(true);
  });

  test("repeated UNAUTHENTICATED ends in an error status, not a hot loop; connect() retries", async () => {
    let good = false;
    const real = tokens(srv, "erin", newHousehold());
    const getToken = countingTokens((req) => (good ? real(req) : "not-a-token"));
    const erin = client(srv, "erin", newHousehold(), { getToken });
    const seen = statuses(erin);
    await waitFor("error", () => erin.getStatus().state === "error");
    expect(erin.getStatus()).toMatchObject({ state: "error", reason: "unauthenticated" });
    expect(erin.getStatus()).not.toHaveProperty("retryAt");
    await sleep(1500);
    expect(getToken.calls).toBe(2); // one retry with a fresh token, then stop
    expect(getToken.forced).toBe(1);
    expect(seen.map((s) => s.state)).toEqual(["connecting", "reconnecting", "error"]);
    good = true;
    erin.connect();
    await connected(erin);
  });

  test("no token (signed out) is an unauthenticated error without a call to the server", async () => {
    const getToken = countingTokens(() => null);
    const c = client(srv, "x", "y", { getToken, maxUnauthenticated: 1 });
    c.onStatusChange(() => {});
    await waitFor("error", () => c.getStatus().state === "error");
    expect(c.getStatus()).toMatchObject({ reason: "unauthenticated" });
    expect(getToken.calls).toBe(1);
  });

  test("no token (signed out) goes straight to the error with the default settings: no retry", async () => {
    const getToken = countingTokens(() => null);
    const c = client(srv, "x", "y", { getToken });
    const seen = statuses(c);
    await waitFor("error", () => c.getStatus().state === "error");
    expect(c.getStatus()).toMatchObject({ state: "error", reason: "unauthenticated" });
    await sleep(300);
    expect(getToken.calls).toBe(1);
    expect(seen.map((s) => s.state)).toEqual(["connecting", "error"]);
  });

  test("an offline browser shows the offline error and retries as soon as it is online", async () => {
    const env = new FakeEnvironment();
    const net = new FlakyNetwork();
    const home = newHousehold();
    const alice = client(srv, "alice", home, {
      environment: env,
      fetch: net.fetch,
      initialDelayMs: 60_000,
      maxDelayMs: 60_000,
      random: () => 0.99,
    });
    alice.onStatusChange(() => {});
    await connected(alice);
    env.online = false;
    net.cut();
    env.fire("offline");
    await waitFor("offline", () => alice.getStatus().state === "error");
    expect(alice.getStatus()).toMatchObject({ state: "error", reason: "offline" });
    const status = alice.getStatus();
    expect(status.state === "error" && status.retryAt !== undefined && status.retryAt - Date.now() > 30_000).toBe(true);
    env.online = true;
    net.restore();
    const t0 = Date.now();
    env.fire("online");
    await connected(alice);
    expect(Date.now() - t0).toBeLessThan(2000); // not the ~59 s backoff
  });

  test("going offline drops a live stream at once; back online it resumes from the cursor, nothing lost or doubled", async () => {
    // The connection itself stays up here, as it does under Chromium's
    // offline emulation (and as a dead one looks until the watchdog fires):
    // only the browser's word says the network is gone.
    const env = new FakeEnvironment();
    const net = new FlakyNetwork();
    const home = newHousehold();
    const alice = client(srv, "alice", home, {
      environment: env,
      fetch: net.fetch,
      initialDelayMs: 60_000,
      maxDelayMs: 60_000,
      random: () => 0.99,
    });
    const got = itemNames(alice);
    const resyncs: ResyncReason[] = [];
    alice.onResync((r) => resyncs.push(r));
    await connected(alice);
    const shopping = client(srv, "bob", home).service(ShoppingService);
    await shopping.addItem({ name: "Before" });
    await waitFor("Before", () => got.length === 1);
    const cursor = alice.resumeCursor;

    env.online = false;
    env.fire("offline");
    expect(alice.getStatus()).toMatchObject({ state: "error", reason: "offline" });
    await waitFor("the server saw the stream close", async () => !(await srv.streams()).byUser.alice);
    for (const name of ["A", "B", "C"]) await shopping.addItem({ name });
    await sleep(100);
    expect(got).toEqual(["Before"]);

    env.online = true;
    const t0 = Date.now();
    env.fire("online");
    await connected(alice);
    expect(Date.now() - t0).toBeLessThan(2000); // not the ~59 s backoff
    await waitFor("replayed", () => got.length === 4);
    await sleep(100);
    expect(got).toEqual(["Before", "A", "B", "C"]);
    expect(net.subscribeCursors).toEqual(["", cursor]);
    expect(resyncs).toEqual(["initial"]); // resumed, not refetched
  });

  test("a resume cursor the server rejects is dropped: one resync, then live without it", async () => {
    const home = newHousehold();
    const alice = client(srv, "alice", home, { resumeCursor: "garbage" });
    const seen = statuses(alice);
    const got = itemNames(alice);
    const resyncs: ResyncReason[] = [];
    alice.onResync((r) => resyncs.push(r));
    await connected(alice);
    expect(resyncs).toEqual(["invalid-cursor"]);
    expect(seen.map((s) => s.state)).toEqual(["connecting", "reconnecting", "connected"]);
    expect(seen[1]).toMatchObject({ reason: "invalid-cursor", delayMs: 0, attempt: 1 });
    expect(alice.resumeCursor).not.toBe("garbage");
    const shopping = client(srv, "bob", home).service(ShoppingService);
    await shopping.addItem({ name: "after" });
    await waitFor("event", () => got.length === 1);
    expect(got).toEqual(["after"]);
    await sleep(200);
    expect(resyncs).toEqual(["invalid-cursor"]);
  });

  test("a saved resume cursor resumes the first stream: missed events replayed, no initial resync", async () => {
    const home = newHousehold();
    const shopping = client(srv, "bob", home).service(ShoppingService);
    const first = client(srv, "alice", home);
    const firstGot = itemNames(first);
    await connected(first);
    await shopping.addItem({ name: "seen" });
    await waitFor("event", () => firstGot.length === 1);
    const saved = first.resumeCursor;
    first.disconnect();
    await shopping.addItem({ name: "missed" });
    const again = client(srv, "alice", home, { resumeCursor: saved });
    const got = itemNames(again);
    const resyncs: ResyncReason[] = [];
    again.onResync((r) => resyncs.push(r));
    await connected(again);
    await waitFor("replay", () => got.length === 1);
    expect(got).toEqual(["missed"]);
    expect(resyncs).toEqual([]);
  });

  test("a request the server refuses (UNIMPLEMENTED: wrong address) is an error, not a retry loop; connect() retries", async () => {
    const env = new FakeEnvironment();
    const getToken = countingTokens(tokens(srv, "alice", newHousehold()));
    const c = client(srv, "alice", "x", {
      baseUrl: `${srv.baseUrl}/not-here`,
      getToken,
      environment: env,
      initialDelayMs: 50,
      maxDelayMs: 50,
    });
    const seen = statuses(c);
    await waitFor("error", () => c.getStatus().state === "error");
    expect(c.getStatus()).toMatchObject({ state: "error", reason: "incompatible" });
    expect(c.getStatus()).not.toHaveProperty("retryAt");
    expect((c.getStatus() as { message: string }).message).toMatch(/unimplemented/);
    env.fire("visible");
    env.fire("online");
    await sleep(500);
    expect(getToken.calls).toBe(1);
    expect(seen.map((s) => s.state)).toEqual(["connecting", "error"]);
    c.connect();
    await waitFor("second try", () => getToken.calls === 2);
    await waitFor("error again", () => c.getStatus().state === "error");
  });

  test("a hidden tab that becomes visible retries at once", async () => {
    const env = new FakeEnvironment();
    const net = new FlakyNetwork();
    const alice = client(srv, "alice", newHousehold(), {
      environment: env,
      fetch: net.fetch,
      initialDelayMs: 60_000,
      maxDelayMs: 60_000,
      random: () => 0.99,
    });
    alice.onStatusChange(() => {});
    await connected(alice);
    net.cut();
    await waitFor("reconnecting", () => alice.getStatus().state === "reconnecting");
    net.restore();
    env.fire("visible");
    await connected(alice);
  });
});

test("backoff: exponential caps with full jitter while the server is down; connected again when it is back", async () => {
  const srv = await Realtimed.launch();
  try {
    const rolls = [0.9, 0.1, 0.5, 0.99, 0.3, 0.7, 0.05];
    let roll = 0;
    const opts = { initialDelayMs: 100, maxDelayMs: 400 };
    const alice = client(srv, "alice", newHousehold(), {
      ...opts,
      quietReconnectMs: 0, // every retry's status, from the first
      random: () => rolls[roll++ % rolls.length] ?? 0,
    });
    const seen = statuses(alice);
    await connected(alice);
    await srv.stop();
    await waitFor("6 retries", () => seen.filter((s) => s.state === "reconnecting").length >= 6, 10_000);
    const retries = seen.filter((s) => s.state === "reconnecting").slice(0, 6);
    expect(retries.map((s) => s.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(retries.map((s) => s.delayMs)).toEqual(
      retries.map((s, i) => Math.round((rolls[i] ?? 0) * backoffCap(s.attempt, opts))),
    );
    for (const s of retries) {
      expect(s.delayMs).toBeGreaterThanOrEqual(0);
      expect(s.delayMs).toBeLessThanOrEqual(backoffCap(s.attempt, opts));
      expect(s).toMatchObject({ reason: "unavailable", role: "solo" });
    }
    // Each try keeps the reconnecting state: no flip back to "connecting".
    const firstRetry = seen.findIndex((s) => s.state === "reconnecting");
    expect(seen.slice(firstRetry).some((s) => s.state === "connecting")).toBe(false);
    await srv.start();
    await connected(alice);
    // A stream that stayed up for the initial delay was healthy: a new
    // failure starts from attempt 1 again.
    await sleep(300);
    seen.length = 0;
    await srv.stop();
    await waitFor("retry", () => seen.some((s) => s.state === "reconnecting"));
    expect(seen.find((s) => s.state === "reconnecting")).toMatchObject({ attempt: 1 });
  } finally {
    await srv.dispose();
  }
});

test("a server that welcomes and drops at once gets growing delays, not a reconnect loop", async () => {
  // Tokens live under 1 s (exp is in whole seconds) plus 50 ms of grace, so
  // every stream is welcomed and then ended with UNAUTHENTICATED well before
  // the initial delay (1.5 s): none of them counts as healthy.
  const srv = await Realtimed.launch({ tokenGrace: "50ms" });
  try {
    const home = newHousehold();
    const opts = { initialDelayMs: 1500, maxDelayMs: 5000 };
    const alice = client(srv, "alice", home, {
      ...opts,
      getToken: tokens(srv, "alice", home, "1s"),
      random: () => 0.05,
      renewLeadMs: 0, // let every stream end with its token
      quietReconnectMs: 0,
    });
    const seen = statuses(alice);
    await waitFor("4 reconnects", () => seen.filter((s) => s.state === "reconnecting").length >= 4, 15_000);
    const retries = seen.filter((s) => s.state === "reconnecting").slice(0, 4);
    expect(retries.map((s) => s.attempt)).toEqual([1, 2, 3, 4]);
    // The first end after a fresh start may be a token expiry: at once. Then backoff.
    expect(retries.map((s) => s.delayMs)).toEqual([0, 2, 3, 4].map((a, i) => (i === 0 ? 0 : Math.round(0.05 * backoffCap(a, opts)))));
    for (const r of retries) expect(r).toMatchObject({ reason: "unauthenticated" });
    // Every one of those streams was welcomed: the token itself is fine.
    expect(seen.filter((s) => s.state === "connected").length).toBeGreaterThanOrEqual(4);
    expect(seen.some((s) => s.state === "error")).toBe(false);
  } finally {
    await srv.dispose();
  }
});

test("resync when the server lost its history (restart: epoch changed), then live again", async () => {
  const srv = await Realtimed.launch();
  try {
    const home = newHousehold();
    const alice = client(srv, "alice", home, { initialDelayMs: 100, maxDelayMs: 200 });
    const got = itemNames(alice);
    const resyncs: ResyncReason[] = [];
    alice.onResync((r) => resyncs.push(r));
    await connected(alice);
    const shopping = client(srv, "bob", home).service(ShoppingService);
    await shopping.addItem({ name: "one" });
    await waitFor("event", () => got.length === 1);
    await srv.restart();
    await waitFor("resync", () => resyncs.length === 2, 10_000);
    expect(resyncs).toEqual(["initial", "epoch-changed"]);
    await connected(alice);
    await shopping.addItem({ name: "two" });
    await waitFor("live event", () => got.length === 2);
    expect(got).toEqual(["one", "two"]);
  } finally {
    await srv.dispose();
  }
});

test("watchdog: a silent stream is dead after about two heartbeat intervals", async () => {
  const srv = await Realtimed.launch({ heartbeat: "500ms" });
  try {
    const alice = client(srv, "alice", newHousehold(), {
      initialDelayMs: 100,
      maxDelayMs: 200,
      connectTimeoutMs: 1000,
    });
    const seen = statuses(alice);
    await connected(alice);
    await sleep(1600); // heartbeats keep a quiet stream alive
    expect(alice.getStatus().state).toBe("connected");
    srv.pause(); // the TCP connection stays open, but nothing arrives
    const t0 = Date.now();
    await waitFor("watchdog", () => alice.getStatus().state === "reconnecting", 5000, 10);
    const elapsed = Date.now() - t0;
    // Not before the interval; by twice it (2 × 500 ms) after the last
    // heartbeat, plus slack for a busy machine (2 CPUs, tests in parallel).
    expect(elapsed).toBeGreaterThan(400);
    expect(elapsed).toBeLessThan(2500);
    expect(alice.getStatus()).toMatchObject({ reason: "unavailable", message: "no frame from the server for 1 s" });
    srv.resume();
    await connected(alice);
    expect(seen.filter((s) => s.state === "connected").length).toBe(2);
  } finally {
    await srv.dispose();
  }
});

test("token expiry without renewing: UNAUTHENTICATED at expiry, reconnect at once with a fresh token, unseen, no event lost", async () => {
  const srv = await Realtimed.launch({ tokenGrace: "100ms" });
  try {
    const home = newHousehold();
    const getToken = countingTokens(tokens(srv, "alice", home, "2s"));
    const alice = client(srv, "alice", home, { getToken, renewLeadMs: 0 });
    const got = itemNames(alice);
    const seen = statuses(alice);
    const resyncs: ResyncReason[] = [];
    alice.onResync((r) => resyncs.push(r));
    await connected(alice);
    const shopping = client(srv, "bob", home).service(ShoppingService);
    const sent: string[] = [];
    const deadline = Date.now() + 4500; // spans at least one expiry
    for (let i = 0; Date.now() < deadline; i++) {
      await shopping.addItem({ name: `n${i}` });
      sent.push(`n${i}`);
      await sleep(60);
    }
    await waitFor("all events", () => got.length >= sent.length, 10_000);
    expect(got).toEqual(sent);
    // The reconnect is quicker than the quiet period: the status never moved.
    expect(seen.map((s) => s.state).filter((st) => st !== "connecting")).toEqual(["connected"]);
    expect(getToken.forced).toBeGreaterThanOrEqual(1);
    expect(resyncs).toEqual(["initial"]);
    expect(alice.getStatus().state).toBe("connected");
  } finally {
    await srv.dispose();
  }
});
