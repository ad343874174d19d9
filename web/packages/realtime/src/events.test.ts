import { create } from "@bufbuild/protobuf";
import { expect, test } from "vitest";
import { EventSchema } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import { ItemRemovedSchema } from "./gen/honeydo/shopping/v1/shopping_pb.js";
import { EventHub } from "./events.js";

// EventHub's calling convention, which the client's delivery relies on.
// The client-level tests show it against a real realtimed; these pin the
// corners a stream makes hard to reach (order, unsubscribing mid-dispatch).

const removed = (itemId: string) =>
  create(EventSchema, { id: itemId, payload: { case: "itemRemoved", value: create(ItemRemovedSchema, { itemId }) } });

test("a throwing handler is reported to onError and the handlers after it still run", () => {
  const errors: unknown[] = [];
  const hub = new EventHub((err) => errors.push(err));
  const log: string[] = [];
  const boom = new Error("boom");
  const anyBoom = new Error("any boom");
  hub.on("itemRemoved", () => {
    throw boom;
  });
  hub.on("itemRemoved", (r, e) => log.push(`typed ${r.itemId} ${e.id}`));
  hub.on("itemAdded", () => log.push("wrong case"));
  hub.onAny(() => {
    throw anyBoom;
  });
  hub.onAny((e) => log.push(`any ${e.payload.case}`));

  hub.dispatch(removed("i1"));

  expect(log).toEqual(["typed i1 i1", "any itemRemoved"]);
  expect(errors).toEqual([boom, anyBoom]);
});

test("handlers may unsubscribe during dispatch; the dispatch under way still reaches everyone it began with", () => {
  const hub = new EventHub((err) => {
    throw err;
  });
  const log: string[] = [];
  const offFirst = hub.on("itemRemoved", (r) => {
    log.push(`first ${r.itemId}`);
    offFirst();
    offSecond();
  });
  const offSecond = hub.on("itemRemoved", (r) => log.push(`second ${r.itemId}`));
  const offAny = hub.onAny((e) => {
    log.push(`any ${e.id}`);
    offAny();
  });

  hub.dispatch(removed("i1"));
  hub.dispatch(removed("i2"));

  expect(log).toEqual(["first i1", "second i1", "any i1"]);
});

test("clear removes every handler, and an old unsubscribe function leaves new handlers alone", () => {
  const hub = new EventHub((err) => {
    throw err;
  });
  const log: string[] = [];
  const offOld = hub.on("itemRemoved", () => log.push("old"));
  hub.onAny(() => log.push("old any"));
  hub.clear();
  hub.on("itemRemoved", () => log.push("new"));
  offOld();

  hub.dispatch(removed("i1"));

  expect(log).toEqual(["new"]);
});
