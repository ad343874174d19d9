// @vitest-environment happy-dom
// @vitest-environment-options {"url": "http://localhost:5173"}
//
// The TanStack Query binding against a real `realtimed --dev`, with real
// QueryClients: another person's changes come through the shopping RPCs and
// reach the cache as events; resyncs come from a real first stream, a
// restarted server and a token for another household.
import { QueryClient, QueryClientProvider, QueryObserver, queryOptions, useQuery } from "@tanstack/react-query";
import { StrictMode, type ReactNode } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { devTokenProvider, RealtimeClient, type RealtimeClientOptions, type ResyncReason } from "@honeydo/realtime";
import { ShoppingService, type ShoppingItem } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";
import { Realtimed, waitFor } from "@honeydo/realtime-testing";
import { RealtimeProvider } from "./index.js";
import { connectRealtimeQueries, useRealtimeQueries, type RealtimeQueryEvents } from "./query.js";

let srv: Realtimed;
beforeAll(async () => {
  srv = await Realtimed.launch();
});
afterAll(async () => {
  await srv?.dispose();
});

const cleanups: (() => void | Promise<void>)[] = [];
/** handlerErrors collects what the clients' onError saw: every test expects none. */
let handlerErrors: unknown[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
  expect(handlerErrors).toEqual([]);
  handlerErrors = [];
});

let seq = 0;
/** people returns a fresh household and users for one test. */
function people(): { home: string; alice: string; bob: string } {
  const n = `${Date.now().toString(36)}${++seq}`;
  return { home: `q-home-${n}`, alice: `alice-${n}`, bob: `bob-${n}` };
}

function clientFor(server: Realtimed, user: string, household: string, extra: Partial<RealtimeClientOptions> = {}): RealtimeClient {
  const c = new RealtimeClient({
    baseUrl: server.baseUrl,
    getToken: devTokenProvider({ baseUrl: server.baseUrl, user, household }),
    crossTab: false,
    stopDelayMs: 10,
    onError: (err) => handlerErrors.push(err),
    ...extra,
  });
  cleanups.push(() => c.disconnect());
  return c;
}

function newQueryClient(): QueryClient {
  const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
  cleanups.push(() => qc.clear());
  return qc;
}

/** upsert and without are the idempotent patches of a list of items. */
function upsert(items: ShoppingItem[], item: ShoppingItem | undefined): ShoppingItem[] {
  if (item === undefined) return items;
  if (!items.some((i) => i.id === item.id)) return [...items, item];
  return items.map((i) => (i.id === item.id && item.version > i.version ? item : i));
}
const without = (items: ShoppingItem[], id: string): ShoppingItem[] => items.filter((i) => i.id !== id);

const listEvents: RealtimeQueryEvents<ShoppingItem[]> = {
  itemAdded: (items, { item }) => upsert(items, item),
  itemUpdated: (items, { item }) => upsert(items, item),
  itemRemoved: (items, { itemId }) => without(items, itemId),
};

/**
 * listQuery is a household list query whose fetches (started) and reads
 * (answered by the server) are counted; `holdAnswers` keeps the fetches'
 * answers back until the function it returns is called.
 */
function listQuery(client: RealtimeClient, household: string) {
  const q = {
    fetches: 0,
    reads: 0,
    hold: undefined as Promise<void> | undefined,
    holdAnswers(): () => void {
      let release = (): void => {};
      q.hold = new Promise((res) => (release = res));
      return () => {
        q.hold = undefined;
        release();
      };
    },
    options: queryOptions({
      queryKey: ["shopping", household, "items"],
      queryFn: async (): Promise<ShoppingItem[]> => {
        q.fetches++;
        const { items } = await client.service(ShoppingService).listItems({});
        q.reads++;
        await q.hold;
        return items;
      },
    }),
  };
  return q;
}

/** observe makes a query active (as a mounted component does) and fetches it. */
function observe(qc: QueryClient, options: ReturnType<typeof listQuery>["options"]): void {
  const observer = new QueryObserver(qc, options);
  cleanups.push(observer.subscribe(() => {}));
}

const names = (items: ShoppingItem[] | undefined): string[] | undefined => items?.map((i) => i.name);

describe("connectRealtimeQueries", () => {
  test("events patch the selected queries that hold data, without a refetch; other queries stay as they are", async () => {
    const p = people();
    const alice = clientFor(srv, p.alice, p.home);
    const bob = clientFor(srv, p.bob, p.home).service(ShoppingService);
    const milk = (await bob.addItem({ name: "Milk" })).item!;
    const qc = newQueryClient();
    const list = listQuery(alice, p.home);
    await qc.fetchQuery(list.options);
    const other = ["shopping", "elsewhere"];
    qc.setQueryData(other, ["untouched"]);
    const binding = connectRealtimeQueries(alice, qc, { queryKey: ["shopping", p.home], events: listEvents });
    cleanups.push(() => binding.close());
    await waitFor("the stream live", () => alice.getStatus().state === "connected", 15_000);

    const eggs = (await bob.addItem({ name: "Eggs" })).item!;
    await bob.updateItem({ itemId: milk.id, checked: true });
    await bob.removeItem({ itemId: eggs.id });
    await bob.addItem({ name: "Bread" });
    await waitFor("Bread in the cache", () => names(qc.getQueryData(list.options.queryKey))?.includes("Bread"), 15_000);
    const items = qc.getQueryData(list.options.queryKey) ?? [];
    expect(items.map((i) => [i.name, i.checked])).toEqual([
      ["Milk", true],
      ["Bread", false],
    ]);
    // Patched from events: fetched once, by the test (no resync refetch: the query is inactive).
    expect(list.fetches).toBe(1);
    expect(qc.getQueryData(other)).toEqual(["untouched"]);
  });

  test('a case marked "invalidate" refetches the active queries', async () => {
    const p = people();
    const alice = clientFor(srv, p.alice, p.home);
    const bob = clientFor(srv, p.bob, p.home).service(ShoppingService);
    const qc = newQueryClient();
    const list = listQuery(alice, p.home);
    const binding = connectRealtimeQueries(alice, qc, { queryKey: list.options.queryKey, events: { itemAdded: "invalidate" } });
    cleanups.push(() => binding.close());
    await waitFor("the stream live", () => alice.getStatus().state === "connected", 15_000);
    observe(qc, list.options);
    await waitFor("the first fetch", () => qc.getQueryState(list.options.queryKey)?.status === "success", 15_000);
    const before = list.fetches;

    await bob.addItem({ name: "Tea" });
    await waitFor("Tea refetched", () => names(qc.getQueryData(list.options.queryKey))?.includes("Tea"), 15_000);
    expect(list.fetches).toBe(before + 1);
  });

  test('a case marked "invalidate" starts a first fetch in flight again: its read may predate the change', async () => {
    const p = people();
    const alice = clientFor(srv, p.alice, p.home);
    const bob = clientFor(srv, p.bob, p.home).service(ShoppingService);
    const qc = newQueryClient();
    const list = listQuery(alice, p.home);
    const binding = connectRealtimeQueries(alice, qc, { queryKey: list.options.queryKey, events: { itemAdded: "invalidate" } });
    cleanups.push(() => binding.close());
    await waitFor("the stream live", () => alice.getStatus().state === "connected", 15_000);
    // A query mounted while the stream is live: its first answer is held back.
    const release = list.holdAnswers();
    observe(qc, list.options);
    await waitFor("the first read", () => list.reads === 1, 15_000);
    await bob.addItem({ name: "Tea" });
    await waitFor("a fetch after the event", () => list.fetches === 2, 15_000);
    release();
    await waitFor("Tea fetched", () => names(qc.getQueryData(list.options.queryKey))?.includes("Tea"), 15_000);
  });

  test("a change that a fetch in flight missed is applied again to the fetch's result", async () => {
    const p = people();
    const alice = clientFor(srv, p.alice, p.home);
    const bob = clientFor(srv, p.bob, p.home).service(ShoppingService);
    const milk = (await bob.addItem({ name: "Milk" })).item!;
    const qc = newQueryClient();
    const list = listQuery(alice, p.home);
    await qc.fetchQuery(list.options);
    const binding = connectRealtimeQueries(alice, qc, { queryKey: list.options.queryKey, events: listEvents });
    cleanups.push(() => binding.close());
    await waitFor("the stream live", () => alice.getStatus().state === "connected", 15_000);

    // A refetch reads the list, then its answer is held back while Bob adds
    // Tea and removes Milk, and this tab patches in its own (answered) change.
    const release = list.holdAnswers();
    const refetch = qc.refetchQueries({ queryKey: list.options.queryKey });
    await waitFor("the refetch read the list", () => list.reads === 2, 15_000);
    await bob.addItem({ name: "Tea" });
    await bob.removeItem({ itemId: milk.id });
    await waitFor("Milk removed from the cache", () => !names(qc.getQueryData(list.options.queryKey))?.includes("Milk"), 15_000);
    binding.patch((items) => [...items.filter((i) => i.name !== "Own"), { ...milk, id: "own-1", name: "Own" }]);
    release();
    await refetch;
    // The held answer has Milk and lacks Tea: replaying the patches fixes both.
    expect(names(qc.getQueryData(list.options.queryKey))).toEqual(["Tea", "Own"]);
    expect(qc.getQueryState(list.options.queryKey)?.fetchStatus).toBe("idle");
  });

  test("close stops patching", async () => {
    const p = people();
    const alice = clientFor(srv, p.alice, p.home);
    const bob = clientFor(srv, p.bob, p.home).service(ShoppingService);
    const qc = newQueryClient();
    const list = listQuery(alice, p.home);
    await qc.fetchQuery(list.options);
    const binding = connectRealtimeQueries(alice, qc, { queryKey: list.options.queryKey, events: listEvents });
    // A second listener keeps the stream open after close, so the event does arrive.
    const seen: string[] = [];
    cleanups.push(alice.on("itemAdded", ({ item }) => seen.push(item?.name ?? "")));
    await waitFor("the stream live", () => alice.getStatus().state === "connected", 15_000);
    binding.close();
    await bob.addItem({ name: "Late" });
    await waitFor("the event delivered", () => seen.includes("Late"), 15_000);
    expect(qc.getQueryData(list.options.queryKey)).toEqual([]);
  });
});

describe("resyncs", () => {
  test("a fetch in flight at the first stream is fetched again: its read may predate the stream", async () => {
    const p = people();
    const alice = clientFor(srv, p.alice, p.home);
    const bob = clientFor(srv, p.bob, p.home).service(ShoppingService);
    const qc = newQueryClient();
    const list = listQuery(alice, p.home);
    const release = list.holdAnswers();
    observe(qc, list.options);
    await waitFor("the first read", () => list.reads === 1, 15_000);
    // A change after that read and before any stream: no event will carry it.
    await bob.addItem({ name: "Between" });
    const binding = connectRealtimeQueries(alice, qc, { queryKey: list.options.queryKey, events: listEvents });
    cleanups.push(() => binding.close());
    const reasons: ResyncReason[] = [];
    cleanups.push(alice.onResync((r) => reasons.push(r)));
    await waitFor("the initial resync", () => reasons.length === 1, 15_000);
    release();
    await waitFor("the list with the change", () => names(qc.getQueryData(list.options.queryKey))?.includes("Between"), 15_000);
    expect(qc.getQueryState(list.options.queryKey)?.fetchStatus).toBe("idle");
  });

  test("the first stream and a failed resume (restarted server) invalidate the selected queries", { timeout: 60_000 }, async () => {
    const server = await Realtimed.launch();
    cleanups.unshift(() => server.dispose()); // after the clients are gone
    const p = people();
    const alice = clientFor(server, p.alice, p.home);
    const reasons: ResyncReason[] = [];
    const qc = newQueryClient();
    const list = listQuery(alice, p.home);
    observe(qc, list.options);
    await waitFor("the first fetch", () => list.fetches === 1, 15_000);
    const binding = connectRealtimeQueries(alice, qc, { queryKey: ["shopping"], events: listEvents });
    cleanups.push(() => binding.close());
    cleanups.push(alice.onResync((r) => reasons.push(r)));
    await waitFor("the initial resync", () => reasons.length === 1, 15_000);
    await waitFor("a refetch", () => list.fetches === 2, 15_000);
    expect(reasons).toEqual(["initial"]);

    await server.restart(); // a new history epoch: the resume fails
    await clientFor(server, p.bob, p.home).service(ShoppingService).addItem({ name: "While away" });
    await waitFor("the failed resume's resync", () => reasons.length === 2, 30_000);
    expect(reasons[1]).toBe("epoch-changed");
    await waitFor("the refetched list", () => names(qc.getQueryData(list.options.queryKey))?.includes("While away"), 15_000);
    expect(list.fetches).toBeGreaterThanOrEqual(3);
  });

  test("identity-changed resets the selected queries: the old household's data is gone at once, then the new one's is fetched", { timeout: 60_000 }, async () => {
    const server = await Realtimed.launch({ tokenGrace: "1s" });
    cleanups.unshift(() => server.dispose());
    const p = people();
    const away = `${p.home}-away`;
    let household = p.home;
    const homeTokens = devTokenProvider({ baseUrl: server.baseUrl, user: p.alice, household: p.home, ttl: "2s" });
    const awayTokens = devTokenProvider({ baseUrl: server.baseUrl, user: p.alice, household: away, ttl: "2s" });
    const alice = clientFor(server, p.alice, p.home, { getToken: (req) => (household === p.home ? homeTokens : awayTokens)(req) });
    await clientFor(server, p.bob, p.home).service(ShoppingService).addItem({ name: "Home item" });
    await clientFor(server, "carol", away).service(ShoppingService).addItem({ name: "Away item" });
    const qc = newQueryClient();
    // One key for "the caller's list", as an app that reads the household from the token has.
    const list = listQuery(alice, "mine");
    observe(qc, list.options);
    const binding = connectRealtimeQueries(alice, qc, { queryKey: list.options.queryKey, events: listEvents });
    cleanups.push(() => binding.close());
    // Registered after the binding's, so it runs after it: what does the cache hold then?
    const atResync: { reason: ResyncReason; names: string[] | undefined }[] = [];
    cleanups.push(alice.onResync((reason) => atResync.push({ reason, names: names(qc.getQueryData(list.options.queryKey)) })));
    await waitFor("the home list", () => names(qc.getQueryData(list.options.queryKey))?.includes("Home item"), 15_000);

    household = away;
    await waitFor("the identity-changed resync", () => atResync.some((r) => r.reason === "identity-changed"), 20_000);
    expect(atResync.find((r) => r.reason === "identity-changed")?.names).toBeUndefined();
    await waitFor("the away list", () => names(qc.getQueryData(list.options.queryKey))?.join() === "Away item", 15_000);
  });
});

describe("useRealtimeQueries", () => {
  test("patches while mounted with the latest events, returns patch for own answers, and stops at unmount", async () => {
    const p = people();
    const alice = clientFor(srv, p.alice, p.home);
    const bob = clientFor(srv, p.bob, p.home).service(ShoppingService);
    const qc = newQueryClient();
    const list = listQuery(alice, p.home);
    let patchRef: ((update: (items: ShoppingItem[]) => ShoppingItem[]) => void) | undefined;

    function List({ suffix }: { suffix: string }): ReactNode {
      const { data } = useQuery(list.options);
      patchRef = useRealtimeQueries({
        queryKey: list.options.queryKey,
        // A new object each render: the latest one is used.
        events: { itemAdded: (items, { item }) => upsert(items, item && { ...item, name: item.name + suffix }) },
      });
      return <ul>{data?.map((i) => <li key={i.id}>{i.name}</li>)}</ul>;
    }
    const container = document.createElement("div");
    document.body.append(container);
    const root: Root = createRoot(container);
    let mounted = true;
    cleanups.push(() => {
      if (mounted) root.unmount();
      container.remove();
    });
    const render = (suffix: string): void =>
      root.render(
        <StrictMode>
          <RealtimeProvider client={alice}>
            <QueryClientProvider client={qc}>
              <List suffix={suffix} />
            </QueryClientProvider>
          </RealtimeProvider>
        </StrictMode>,
      );
    render("");
    await waitFor("the stream live", () => alice.getStatus().state === "connected", 15_000);
    await bob.addItem({ name: "Tea" });
    await waitFor("Tea shown", () => container.textContent === "Tea", 15_000);
    render(" (new)");
    await bob.addItem({ name: "Jam" });
    await waitFor("Jam shown with the latest patch", () => container.textContent === "TeaJam (new)", 15_000);
    patchRef?.((items) => items.filter((i) => i.name === "Tea"));
    await waitFor("own patch shown", () => container.textContent === "Tea", 15_000);

    root.unmount();
    mounted = false;
    const seen: string[] = [];
    cleanups.push(alice.on("itemAdded", ({ item }) => seen.push(item?.name ?? "")));
    await bob.addItem({ name: "Late" });
    await waitFor("the event delivered", () => seen.includes("Late"), 15_000);
    expect(names(qc.getQueryData(list.options.queryKey))).toEqual(["Tea"]);
  });
});
