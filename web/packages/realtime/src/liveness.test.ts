// A frozen or unreachable server is noticed within 10 s, unary calls give
// up after a bounded time, the status changes only when a person should
// see it, and the stream outlives every token. All against a real
// `realtimed --dev` with its default timings unless a test says otherwise.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, expect, test } from "vitest";
import { ShoppingService } from "./gen/honeydo/shopping/v1/shopping_pb.js";
import { FlakyNetwork, Realtimed, sleep, waitFor } from "@honeydo/realtime-testing";
import {
  describeStatus,
  devTokenProvider,
  RealtimeClient,
  STATUS_LABELS,
  statusKind,
  type RealtimeClientOptions,
  type RealtimeStatus,
} from "./index.js";

let householdSeq = 0;
const newHousehold = (): string => `l${Date.now().toString(36)}${++householdSeq}`;

const clients: RealtimeClient[] = [];
const servers: Realtimed[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of servers.splice(0)) await s.dispose();
});

async function server(options: Parameters<typeof Realtimed.launch>[0] = {}): Promise<Realtimed> {
  const srv = await Realtimed.launch(options);
  servers.push(srv);
  return srv;
}

function client(srv: Realtimed, user: string, household: string, extra: Partial<RealtimeClientOptions> = {}): RealtimeClient {
  const c = new RealtimeClient({
    baseUrl: srv.baseUrl,
    getToken: devTokenProvider({ baseUrl: srv.baseUrl, user, household }),
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

/** record keeps every status with the time it was reported. */
function record(c: RealtimeClient): { status: RealtimeStatus; at: number }[] {
  const seen: { status: RealtimeStatus; at: number }[] = [];
  c.onStatusChange((status) => seen.push({ status, at: Date.now() }));
  return seen;
}

/** changes counts how often f of the status changed along the way. */
function changes<T>(seen: { status: RealtimeStatus }[], f: (s: RealtimeStatus) => T): T[] {
  const out: T[] = [];
  for (const { status } of seen) {
    const v = f(status);
    if (out.length === 0 || out[out.length - 1] !== v) out.push(v);
  }
  return out;
}

const connected = (c: RealtimeClient): Promise<true> =>
  waitFor(`${c.getStatus().state} → connected`, () => c.getStatus().state === "connected", 15_000);

test("a frozen server (SIGSTOP) shows within 10 s, and Live again once it wakes", { timeout: 60_000 }, async () => {
  const srv = await server();
  const alice = client(srv, "alice", newHousehold());
  const seen = record(alice);
  await connected(alice);
  srv.pause();
  const frozeAt = Date.now();
  await waitFor("the loss to show", () => alice.getStatus().state !== "connected", 30_000, 20);
  const took = Date.now() - frozeAt;
  console.log(`frozen server shown after ${took} ms: ${describeStatus(alice.getStatus())}`);
  expect(took).toBeLessThanOrEqual(10_000);
  expect(alice.getStatus()).toMatchObject({ state: "reconnecting", reason: "unavailable", stalled: true });
  srv.resume();
  await connected(alice);
  expect(changes(seen, (s) => STATUS_LABELS[statusKind(s)])).toEqual(["Connecting", "Live", "Reconnecting", "Live"]);
});

test("a unary call to a frozen server gives up after 10 s with a clear message", { timeout: 60_000 }, async () => {
  const srv = await server();
  const alice = client(srv, "alice", newHousehold());
  await alice.ping();
  srv.pause();
  const began = Date.now();
  const err = await alice.service(ShoppingService).addItem({ name: "milk" }).then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  const took = Date.now() - began;
  console.log(`add to a frozen server failed after ${took} ms: ${err?.message}`);
  expect(err?.code).toBe(Code.DeadlineExceeded);
  expect(err?.rawMessage).toBe("no answer from the server within 10 s");
  expect(took).toBeLessThan(15_000);
  // A call's own timeout wins, and says so.
  const own = await alice.ping({ timeoutMs: 300 }).then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  expect(own?.rawMessage).toBe("no answer from the server within 300 ms");
});

test("a 15 s outage: Live → Reconnecting → Live, nothing in between", { timeout: 90_000 }, async () => {
  const srv = await server();
  const alice = client(srv, "alice", newHousehold(), { initialDelayMs: 500, maxDelayMs: 2000 });
  const seen = record(alice);
  await connected(alice);
  const from = seen.length - 1;
  await srv.stop();
  await sleep(15_000);
  await srv.start();
  await connected(alice);
  const during = seen.slice(from);
  const states = changes(during, (s) => s.state);
  const labels = changes(during, (s) => STATUS_LABELS[statusKind(s)]);
  console.log(`15 s outage: ${during.length} statuses, states ${states.join(" → ")}, labels ${labels.join(" → ")}`);
  expect(states).toEqual(["connected", "reconnecting", "connected"]);
  expect(labels).toEqual(["Live", "Reconnecting", "Live"]);
});

test("a reconnect within a second shows nothing", async () => {
  const srv = await server();
  const net = new FlakyNetwork();
  const alice = client(srv, "alice", newHousehold(), { fetch: net.fetch, random: () => 0 });
  const seen = record(alice);
  await connected(alice);
  const before = seen.length;
  const streams = net.subscribeCursors.length;
  net.cut();
  net.restore();
  await waitFor("a new stream", () => net.subscribeCursors.length > streams);
  await waitFor("its welcome", async () => (await srv.streams()).byUser.alice === 1);
  await sleep(1500); // past the grace period
  expect(seen.slice(before).map((s) => s.status.state)).toEqual([]);
  expect(alice.getStatus().state).toBe("connected");
});

test("2 s tokens for 30 s: the stream outlives each, no status change, no gap, no duplicate", { timeout: 90_000 }, async () => {
  const srv = await server({ tokenGrace: "2s" });
  const home = newHousehold();
  let tokensIssued = 0;
  const inner = devTokenProvider({ baseUrl: srv.baseUrl, user: "alice", household: home, ttl: "2s" });
  const alice = client(srv, "alice", home, {
    getToken: (req) => {
      tokensIssued++;
      return inner(req);
    },
  });
  const got: string[] = [];
  alice.on("itemAdded", (added) => got.push(added.item?.name ?? "?"));
  const seen = record(alice);
  await connected(alice);
  const before = seen.length;
  const shopping = client(srv, "bob", home).service(ShoppingService);
  const sent: string[] = [];
  const deadline = Date.now() + 30_000;
  for (let i = 0; Date.now() < deadline; i++) {
    await shopping.addItem({ name: `n${i}` });
    sent.push(`n${i}`);
    await sleep(50);
  }
  await waitFor("every event", () => got.length >= sent.length, 15_000);
  await sleep(200);
  console.log(`2 s tokens: ${sent.length} events over 30 s, ${tokensIssued} tokens`);
  expect(got).toEqual(sent);
  expect(seen.slice(before).map((s) => s.status.state)).toEqual([]);
  expect(tokensIssued).toBeGreaterThanOrEqual(8);
  // A renewal may hold its second stream open at this instant; a leaked
  // stream would stay.
  await waitFor("one stream for alice", async () => (await srv.streams()).byUser.alice === 1, 10_000);
});

test("a renewal into another household (organization switch) resyncs and reports the new household", { timeout: 60_000 }, async () => {
  const srv = await server({ tokenGrace: "1s" });
  const home = newHousehold();
  const away = newHousehold();
  let household = home;
  const homeTokens = devTokenProvider({ baseUrl: srv.baseUrl, user: "alice", household: home, ttl: "2s" });
  const awayTokens = devTokenProvider({ baseUrl: srv.baseUrl, user: "alice", household: away, ttl: "2s" });
  const alice = client(srv, "alice", home, { getToken: (req) => (household === home ? homeTokens : awayTokens)(req) });
  const got: string[] = [];
  alice.on("itemAdded", (added) => got.push(added.item?.name ?? "?"));
  const resyncs: string[] = [];
  alice.onResync((reason) => resyncs.push(reason));
  await connected(alice);
  const atHome = client(srv, "bob", home).service(ShoppingService);
  const atAway = client(srv, "carol", away).service(ShoppingService);
  await atHome.addItem({ name: "home 1" });
  await waitFor("the home event", () => got.length === 1, 15_000);
  household = away;
  await waitFor("a resync", () => resyncs.length > 1, 15_000);
  expect(resyncs).toEqual(["initial", "identity-changed"]);
  expect(alice.getStatus()).toMatchObject({ state: "connected", householdId: away });
  await atHome.addItem({ name: "home 2" });
  await atAway.addItem({ name: "away 1" });
  await waitFor("the away event", () => got.length >= 2, 15_000);
  await sleep(200);
  expect(got).toEqual(["home 1", "away 1"]);
});
