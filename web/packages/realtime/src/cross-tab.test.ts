import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { ShoppingService } from "./gen/honeydo/shopping/v1/shopping_pb.js";
import { FakeEnvironment, MemoryLocks, Realtimed, sleep, waitFor } from "@honeydo/realtime-testing";
import { browserChannel, isTabMessage } from "./cross-tab.js";
import { devTokenProvider, RealtimeClient, type ResyncReason } from "./index.js";

// Several "tabs" in one process: each is a RealtimeClient with cross-tab on,
// sharing a MemoryLocks (standing in for navigator.locks) and Node's
// BroadcastChannel, which behaves like the browser's.

let srv: Realtimed;
beforeAll(async () => {
  srv = await Realtimed.launch({ heartbeat: "1s" });
});
afterAll(async () => {
  await srv.dispose();
});

const tabs: RealtimeClient[] = [];
afterEach(() => {
  for (const t of tabs.splice(0)) t.disconnect();
});

let seq = 0;

interface Tab {
  client: RealtimeClient;
  got: string[];
  resyncs: ResyncReason[];
}

function openTab(locks: MemoryLocks, user: string, household: string, key = user): Tab {
  const client = new RealtimeClient({
    baseUrl: srv.baseUrl,
    getToken: devTokenProvider({ baseUrl: srv.baseUrl, user, household }),
    crossTab: { key: `${key}-${household}`, locks },
    stopDelayMs: 20,
    initialDelayMs: 100,
    maxDelayMs: 200,
  });
  tabs.push(client);
  const got: string[] = [];
  const resyncs: ResyncReason[] = [];
  client.on("itemAdded", (a) => got.push(a.item?.name ?? "?"));
  client.onResync((r) => resyncs.push(r));
  return { client, got, resyncs };
}

const allConnected = (ts: Tab[]): Promise<true> =>
  waitFor(
    "every tab connected",
    () => ts.every((t) => t.client.getStatus().state === "connected"),
    10_000,
  );

test("one stream for many tabs: one leader, followers get every frame, status is relayed", async () => {
  const home = `x${++seq}${Date.now()}`;
  const locks = new MemoryLocks();
  const ts = Array.from({ length: 5 }, () => openTab(locks, "alice", home));
  await allConnected(ts);
  expect(ts.map((t) => t.client.getStatus().role).sort()).toEqual([
    "follower",
    "follower",
    "follower",
    "follower",
    "leader",
  ]);
  expect(ts.every((t) => t.resyncs.join() === "initial")).toBe(true);
  expect((await srv.streams()).byUser.alice).toBe(1);

  const bob = new RealtimeClient({
    baseUrl: srv.baseUrl,
    getToken: devTokenProvider({ baseUrl: srv.baseUrl, user: "bob", household: home }),
    crossTab: false,
  }).service(ShoppingService);
  for (const name of ["a", "b", "c"]) await bob.addItem({ name });
  await waitFor("every tab has 3", () => ts.every((t) => t.got.length === 3));
  for (const t of ts) expect(t.got).toEqual(["a", "b", "c"]);
  const cursors = new Set(ts.map((t) => t.client.resumeCursor));
  expect(cursors.size).toBe(1);
});

test("the leader leaves: another tab takes over from the last cursor, no event lost or doubled", async () => {
  const home = `x${++seq}${Date.now()}`;
  const locks = new MemoryLocks();
  const ts = Array.from({ length: 3 }, () => openTab(locks, "alice", home));
  await allConnected(ts);
  const bob = new RealtimeClient({
    baseUrl: srv.baseUrl,
    getToken: devTokenProvider({ baseUrl: srv.baseUrl, user: "bob", household: home }),
    crossTab: false,
  }).service(ShoppingService);

  const sent: string[] = [];
  const publishing = (async () => {
    for (let i = 0; i < 40; i++) {
      await bob.addItem({ name: `e${i}` });
      sent.push(`e${i}`);
      await sleep(10);
    }
  })();
  let rest = ts;
  for (let round = 0; round < 2; round++) {
    await sleep(120);
    const leader = rest.find((t) => t.client.getStatus().role === "leader") ?? expect.unreachable();
    leader.client.disconnect(); // the tab closes: its lock passes on
    rest = rest.filter((t) => t !== leader);
    await waitFor("a new leader", () => rest.some((t) => t.client.getStatus().role === "leader"));
  }
  await publishing;
  const last = rest[0] ?? expect.unreachable();
  await waitFor("all 40", () => last.got.length >= 40, 10_000);
  await sleep(100);
  expect(last.got).toEqual(sent);
  expect(last.resyncs).toEqual(["initial"]);
  await waitFor("one stream", async () => (await srv.streams()).byUser.alice === 1);
});

test("a change reaches every other tab and the person's other browser exactly once, not the tab that made it", async () => {
  const home = `x${++seq}${Date.now()}`;
  // Two browsers of Alice (a laptop and a phone: own locks, own cross-tab
  // key, own dev sessions), two tabs each; Bob in the household; Carol in
  // another household.
  const laptopLocks = new MemoryLocks();
  const phoneLocks = new MemoryLocks();
  const laptop = [openTab(laptopLocks, "alice", home, "alice-laptop"), openTab(laptopLocks, "alice", home, "alice-laptop")];
  const phone = [openTab(phoneLocks, "alice", home, "alice-phone"), openTab(phoneLocks, "alice", home, "alice-phone")];
  const bob = openTab(new MemoryLocks(), "bob", home);
  const carol = openTab(new MemoryLocks(), "carol", `${home}-other`);
  const everyone = [...laptop, ...phone, bob, carol];
  await allConnected(everyone);
  expect((await srv.streams()).byUser.alice).toBeGreaterThanOrEqual(2);
  const origins: Record<string, string[]> = {};
  for (const t of everyone) t.client.on("itemAdded", (_a, ev) => (origins[t.client.origin] ??= []).push(ev.origin));

  // One change from each of the laptop's tabs: one is the leader, the
  // other a follower, and each must skip exactly its own event.
  const [l0, l1] = laptop as [Tab, Tab];
  await l0.client.service(ShoppingService).addItem({ name: "from-tab-0" });
  await l1.client.service(ShoppingService).addItem({ name: "from-tab-1" });
  const bobPhone = new RealtimeClient({
    baseUrl: srv.baseUrl,
    getToken: devTokenProvider({ baseUrl: srv.baseUrl, user: "bob", household: home }),
    crossTab: false,
  });
  await bobPhone.service(ShoppingService).addItem({ name: "from-bob" });

  const others = [l1, ...phone, bob];
  await waitFor("Bob's change everywhere", () => others.every((t) => t.got.includes("from-bob")) && l0.got.includes("from-bob"));
  await sleep(200);
  expect(l0.got).toEqual(["from-tab-1", "from-bob"]);
  expect(l1.got).toEqual(["from-tab-0", "from-bob"]);
  for (const t of [...phone, bob]) expect(t.got).toEqual(["from-tab-0", "from-tab-1", "from-bob"]);
  expect(carol.got).toEqual([]);
  // The events carry the origin of the client that made each change.
  const phoneOrigins = origins[(phone[0] as Tab).client.origin] ?? [];
  expect(phoneOrigins).toEqual([l0.client.origin, l1.client.origin, bobPhone.origin]);
});

test("a follower's status tells the truth about the shared stream", async () => {
  const home = `x${++seq}${Date.now()}`;
  const locks = new MemoryLocks();
  const local = await Realtimed.launch();
  try {
    const mk = (): RealtimeClient => {
      const c = new RealtimeClient({
        baseUrl: local.baseUrl,
        getToken: devTokenProvider({ baseUrl: local.baseUrl, user: "alice", household: home }),
        crossTab: { key: home, locks },
        initialDelayMs: 100,
        maxDelayMs: 200,
      });
      tabs.push(c);
      c.onStatusChange(() => {});
      return c;
    };
    const leader = mk();
    await waitFor("leader", () => leader.getStatus().state === "connected");
    const follower = mk();
    await waitFor("follower connected", () => follower.getStatus().state === "connected");
    expect(follower.getStatus()).toMatchObject({ role: "follower", userId: "alice", householdId: home });
    await local.stop();
    await waitFor("follower reconnecting", () => follower.getStatus().state === "reconnecting");
    expect(follower.getStatus()).toMatchObject({ role: "follower", reason: "unavailable" });
    await local.start();
    await waitFor("follower connected again", () => follower.getStatus().state === "connected", 10_000);
    follower.disconnect();
    expect(follower.getStatus().state).toBe("disconnected");
    expect(leader.getStatus().state).toBe("connected");
  } finally {
    await local.dispose();
  }
});

test("a follower's tab becoming visible makes the leader retry at once", async () => {
  const home = `x${++seq}${Date.now()}`;
  const locks = new MemoryLocks();
  const local = await Realtimed.launch();
  try {
    const envs = [new FakeEnvironment(), new FakeEnvironment()];
    const [leader, follower] = envs.map((environment) => {
      const c = new RealtimeClient({
        baseUrl: local.baseUrl,
        getToken: devTokenProvider({ baseUrl: local.baseUrl, user: "alice", household: home }),
        crossTab: { key: home, locks },
        environment,
        initialDelayMs: 60_000,
        maxDelayMs: 60_000,
        random: () => 0.99,
      });
      tabs.push(c);
      c.onStatusChange(() => {});
      return c;
    });
    if (!leader || !follower) throw new Error("tabs");
    await waitFor("leader", () => leader.getStatus().state === "connected" && leader.getStatus().role === "leader");
    await waitFor("follower", () => follower.getStatus().state === "connected");
    await local.stop();
    await waitFor("waiting ~1 min", () => follower.getStatus().state === "reconnecting");
    await local.start();
    const t0 = Date.now();
    envs[1]?.fire("visible"); // the follower's tab, not the leader's
    await waitFor("connected", () => follower.getStatus().state === "connected", 5000);
    expect(Date.now() - t0).toBeLessThan(3000);
  } finally {
    await local.dispose();
  }
});

test("channel messages are validated", () => {
  expect(isTabMessage({ t: "retry", from: "x", force: true })).toBe(true);
  expect(isTabMessage({ t: "retry", from: "x" })).toBe(false);
  expect(isTabMessage({ t: "hello", from: "x" })).toBe(true);
  expect(isTabMessage({ t: "frame", from: "x", frame: new Uint8Array(1) })).toBe(true);
  expect(isTabMessage({ t: "frame", from: "x", frame: "nope" })).toBe(false);
  expect(isTabMessage({ t: "status", from: "x", status: { state: "bogus" } })).toBe(false);
  expect(isTabMessage({ t: "state", from: "x", status: { state: "idle" }, cursor: "c" })).toBe(true);
  expect(isTabMessage(null)).toBe(false);
  expect(isTabMessage({ t: "what", from: "x" })).toBe(false);
  const probe = browserChannel("probe");
  expect(probe).toBeDefined();
  probe?.close();
});
