import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, test } from "vitest";
import { ShoppingItemSchema, type ShoppingItem } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";
import { initialShoppingState, shoppingReducer, visibleItems, type ShoppingAction, type ShoppingState } from "./shopping-state";

const item = (id: string, name: string, version: number, extra: { checked?: boolean } = {}): ShoppingItem =>
  create(ShoppingItemSchema, {
    id,
    name,
    version: BigInt(version),
    createTime: timestampFromMs(Number(id.replace(/\D/g, "")) * 1000),
    ...extra,
  });

const run = (...actions: ShoppingAction[]): ShoppingState => actions.reduce(shoppingReducer, initialShoppingState);
const names = (s: ShoppingState): string[] => visibleItems(s, "me").map((r) => `${r.name}${r.checked ? "✓" : ""}`);

describe("shoppingReducer", () => {
  test("keeps the newest version of an item, whatever the arrival order", () => {
    const s = run(
      { type: "loaded", items: [item("i1", "Milk", 1)], since: 0 },
      { type: "upsert", item: item("i1", "Oat milk", 3) },
      { type: "upsert", item: item("i1", "Soy milk", 2) }, // late, older
    );
    expect(names(s)).toEqual(["Oat milk"]);
  });

  test("a removed item stays removed when a late add or update arrives", () => {
    const s = run({ type: "removed", itemId: "i1" }, { type: "upsert", item: item("i1", "Milk", 1) });
    expect(names(s)).toEqual([]);
  });

  test("a refetch that started before newer events does not undo them", () => {
    let s = run({ type: "loaded", items: [item("i1", "Milk", 1), item("i2", "Eggs", 1)], since: 0 });
    const since = s.seq; // refetch starts here
    s = shoppingReducer(s, { type: "upsert", item: item("i3", "Bread", 1) });
    s = shoppingReducer(s, { type: "upsert", item: item("i1", "Milk", 2, { checked: true }) });
    s = shoppingReducer(s, { type: "removed", itemId: "i2" });
    // The answer was computed before those events.
    s = shoppingReducer(s, { type: "loaded", items: [item("i1", "Milk", 1), item("i2", "Eggs", 1)], since });
    expect(names(s)).toEqual(["Milk✓", "Bread"]);
  });

  test("a refetch drops items that vanished while we were away", () => {
    let s = run({ type: "loaded", items: [item("i1", "Milk", 1), item("i2", "Eggs", 1)], since: 0 });
    s = shoppingReducer(s, { type: "loaded", items: [item("i2", "Eggs", 4, { checked: true })], since: s.seq });
    expect(names(s)).toEqual(["Eggs✓"]);
  });

  test("pending changes show at once and go away when settled; the answer's version wins", () => {
    let s = run({ type: "loaded", items: [item("i1", "Milk", 1)], since: 0 });
    s = shoppingReducer(s, { type: "pending", op: { kind: "add", opId: "tmp1", name: "Tea", at: 9e12 } });
    s = shoppingReducer(s, { type: "pending", op: { kind: "update", opId: "u1", itemId: "i1", checked: true } });
    expect(names(s)).toEqual(["Milk✓", "Tea"]);
    expect(visibleItems(s, "me").map((r) => [r.pending, r.optimistic])).toEqual([
      [true, false],
      [true, true],
    ]);
    // The server confirms both.
    s = shoppingReducer(s, { type: "upsert", item: item("i2", "Tea", 1) });
    s = shoppingReducer(s, { type: "settled", opId: "tmp1" });
    s = shoppingReducer(s, { type: "upsert", item: item("i1", "Milk", 2, { checked: true }) });
    s = shoppingReducer(s, { type: "settled", opId: "u1" });
    expect(names(s)).toEqual(["Milk✓", "Tea"]);
    expect(visibleItems(s, "me").every((r) => !r.pending)).toBe(true);
  });

  test("a failed change reverts by settling without an upsert", () => {
    let s = run({ type: "loaded", items: [item("i1", "Milk", 1)], since: 0 });
    s = shoppingReducer(s, { type: "pending", op: { kind: "remove", opId: "r1", itemId: "i1" } });
    expect(names(s)).toEqual([]);
    s = shoppingReducer(s, { type: "settled", opId: "r1" });
    expect(names(s)).toEqual(["Milk"]);
  });

  test("an overlay survives someone else's newer version until our answer arrives", () => {
    let s = run({ type: "loaded", items: [item("i1", "Milk", 1)], since: 0 });
    s = shoppingReducer(s, { type: "pending", op: { kind: "update", opId: "u1", itemId: "i1", checked: true } });
    s = shoppingReducer(s, { type: "upsert", item: item("i1", "Oat milk", 2) }); // Bob renamed it
    expect(names(s)).toEqual(["Oat milk✓"]);
    s = shoppingReducer(s, { type: "upsert", item: item("i1", "Oat milk", 3, { checked: true }) });
    s = shoppingReducer(s, { type: "settled", opId: "u1" });
    expect(names(s)).toEqual(["Oat milk✓"]);
  });
});
