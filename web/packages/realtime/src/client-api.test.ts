import { Realtimed, waitFor } from "@honeydo/realtime-testing";
import { createConnectTransport } from "@connectrpc/connect-web";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { Event } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import { ShoppingService } from "./gen/honeydo/shopping/v1/shopping_pb.js";
import { devTokenProvider, RealtimeClient, type RealtimeStatus } from "./index.js";

// The client's listening API as an app reads it: onStatusChange, events()
// as an async iterable with an AbortSignal, and dispose() / `using`. Each
// against a real realtimed, with a second client (bob) causing the events.

let householdSeq = 0;
const newHousehold = (): string => `api${Date.now().toString(36)}${++householdSeq}`;

// Generous bounds: the machine is shared and busy.
const LONG = 20_000;

const clients: RealtimeClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.dispose();
});

describe("the listening API", () => {
  let srv: Realtimed;
  beforeAll(async () => {
    srv = await Realtimed.launch({ heartbeat: "1s" });
  });
  afterAll(async () => {
    await srv.dispose();
  });

  function client(user: string, household: string): RealtimeClient {
    const c = new RealtimeClient({
      baseUrl: srv.baseUrl,
      getToken: devTokenProvider({ baseUrl: srv.baseUrl, user, household, ttl: "10m" }),
      crossTab: false,
      stopDelayMs: 50,
      onError: (err) => {
        throw err;
      },
    });
    clients.push(c);
    return c;
  }

  const streamsOf = async (user: string): Promise<number> => (await srv.streams()).byUser[user] ?? 0;

  test("a transport option gets the client's interceptors: calls carry the token and this tab's origin", async () => {
    const home = newHousehold();
    let origin: string | null = null;
    const alice = new RealtimeClient({
      baseUrl: srv.baseUrl,
      getToken: devTokenProvider({ baseUrl: srv.baseUrl, user: "alice", household: home, ttl: "10m" }),
      crossTab: false,
      transport: (interceptors) =>
        createConnectTransport({
          baseUrl: srv.baseUrl,
          interceptors: [
            ...interceptors,
            (next) => async (req) => {
              origin = req.header.get("Realtime-Origin");
              return next(req);
            },
          ],
        }),
    });
    clients.push(alice);
    const item = await alice.service(ShoppingService).addItem({ name: "Tea" });
    expect(item.item?.addedByUserId).toBe("alice");
    expect(origin).toBe(alice.origin);
  });

  test("onStatusChange tells every change until its unsubscribe function is called", async () => {
    const home = newHousehold();
    const alice = client("alice", home);
    const seen: RealtimeStatus["state"][] = [];
    const off = alice.onStatusChange((s) => seen.push(s.state));
    await waitFor("connected", () => seen.includes("connected"), LONG);
    expect(seen[0]).toBe("connecting");
    off();
    off(); // idempotent
    const count = seen.length;
    alice.disconnect();
    expect(alice.getStatus().state).toBe("disconnected");
    expect(seen.length).toBe(count);
  });

  test("events() yields every event in order, keeps what came before next(), and ends quietly on abort", async () => {
    const home = newHousehold();
    const alice = client("alice", home);
    const bob = client("bob", home);
    const ac = new AbortController();
    const iteration = alice.events({ signal: ac.signal });
    // The iteration alone opens the stream.
    await waitFor("alice connected", () => alice.getStatus().state === "connected", LONG);
    expect(await streamsOf("alice")).toBe(1);

    // Three events arrive before anyone calls next(): they are kept.
    const arrived: Event[] = [];
    const offCount = alice.onEvent((e) => arrived.push(e));
    const shopping = bob.service(ShoppingService);
    for (const name of ["Milk", "Eggs", "Bread"]) await shopping.addItem({ name });
    await waitFor("3 events reach alice", () => arrived.length === 3, LONG);
    offCount();

    const names: string[] = [];
    const loop = (async () => {
      for await (const event of iteration) {
        if (event.payload.case === "itemAdded") names.push(event.payload.value.item?.name ?? "?");
      }
      return "ended";
    })();
    await waitFor("the buffered 3", () => names.length === 3, LONG);
    await shopping.addItem({ name: "Apples" });
    await waitFor("the 4th, live", () => names.length === 4, LONG);
    expect(names).toEqual(["Milk", "Eggs", "Bread", "Apples"]);

    ac.abort();
    await expect(loop).resolves.toBe("ended");
    // Nothing else listens: the stream closes.
    await waitFor("alice's stream closed", async () => (await streamsOf("alice")) === 0, LONG);
    expect(alice.getStatus().state).toBe("idle");
  });

  test("break in a for-await loop unregisters the iteration", async () => {
    const home = newHousehold();
    const alice = client("alice", home);
    const bob = client("bob", home);
    const first = (async () => {
      for await (const event of alice.events()) return event;
      return undefined;
    })();
    await waitFor("alice connected", () => alice.getStatus().state === "connected", LONG);
    await bob.service(ShoppingService).addItem({ name: "Oats" });
    const event = await first;
    expect(event?.payload.case).toBe("itemAdded");
    await waitFor("alice's stream closed", async () => (await streamsOf("alice")) === 0, LONG);
  });

  test("an already aborted signal yields nothing and opens no stream", async () => {
    const alice = client("alice", newHousehold());
    const ac = new AbortController();
    ac.abort();
    const got: Event[] = [];
    for await (const e of alice.events({ signal: ac.signal })) got.push(e);
    expect(got).toEqual([]);
    expect(alice.getStatus().state).toBe("idle");
  });

  test("dispose() closes the stream at once, ends events() loops, says disconnected, and refuses reuse", async () => {
    const home = newHousehold();
    const alice = client("alice", home);
    const seen: RealtimeStatus["state"][] = [];
    alice.onStatusChange((s) => seen.push(s.state));
    const resyncs: string[] = [];
    alice.onResync((r) => resyncs.push(r));
    const loop = (async () => {
      let n = 0;
      for await (const _ of alice.events()) n++;
      return n;
    })();
    await waitFor("alice connected", () => alice.getStatus().state === "connected", LONG);
    expect(await streamsOf("alice")).toBe(1);

    alice.dispose();
    expect(seen.at(-1)).toBe("disconnected");
    await expect(loop).resolves.toBe(0);
    await waitFor("alice's stream closed", async () => (await streamsOf("alice")) === 0, LONG);
    expect(() => alice.connect()).toThrow(/disposed/);
    expect(() => alice.on("itemAdded", () => {})).toThrow(/disposed/);
    expect(() => alice.events()).toThrow(/disposed/);
    alice.dispose(); // again: nothing
    expect(resyncs).toEqual(["initial"]);
  });

  test("`using` disposes the client at the end of its block", async () => {
    const home = newHousehold();
    let escaped: RealtimeClient | undefined;
    {
      using alice = new RealtimeClient({
        baseUrl: srv.baseUrl,
        getToken: devTokenProvider({ baseUrl: srv.baseUrl, user: "alice", household: home, ttl: "10m" }),
        crossTab: false,
      });
      escaped = alice;
      alice.connect();
      await waitFor("alice connected", () => alice.getStatus().state === "connected", LONG);
    }
    expect(escaped.getStatus().state).toBe("disconnected");
    expect(() => escaped.connect()).toThrow(/disposed/);
    await waitFor("alice's stream closed", async () => (await streamsOf("alice")) === 0, LONG);
  });
});
