import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, test } from "vitest";
import { ListItemsResponseSchema, ShoppingItemSchema, type ShoppingItem } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";
import { itemsOf, pendingChangeOf, shoppingRows, withItem, withoutItem, type PendingChange, type ShoppingPages } from "./shopping-cache";

const item = (id: string, name: string, version: number, extra: { checked?: boolean } = {}): ShoppingItem =>
  create(ShoppingItemSchema, {
    id,
    name,
    version: BigInt(version),
    createTime: timestampFromMs(Number(id.replace(/\D/g, "")) * 1000),
    ...extra,
  });

/** pages caches the items in pages of two, as ListItems pages them. */
function pages(...items: ShoppingItem[]): ShoppingPages {
  const result: ShoppingPages = { pages: [], pageParams: [] };
  for (let n = 0; n === 0 || n < items.length; n += 2) {
    result.pages.push(create(ListItemsResponseSchema, { items: items.slice(n, n + 2) }));
    result.pageParams.push(n === 0 ? "" : `token-${n}`);
  }
  return result;
}
const names = (list: ShoppingPages): string[] => itemsOf(list).map((i) => `${i.name}${i.checked ? "✓" : ""}`);

describe("withItem and withoutItem", () => {
  test("keep the newest version of an item, whatever the arrival order, on the page that holds it", () => {
    let list = pages(item("i1", "Milk", 1), item("i2", "Eggs", 1), item("i3", "Tea", 1));
    list = withItem(list, item("i3", "Green tea", 3), false);
    list = withItem(list, item("i3", "Black tea", 2), false); // late, older
    expect(names(list)).toEqual(["Milk", "Eggs", "Green tea"]);
    expect(list.pages[1]?.items.map((i) => i.name)).toEqual(["Green tea"]);
  });

  test("an add goes last and counts once; an update never brings back an item removed meanwhile", () => {
    let list = pages(item("i1", "Milk", 1));
    list = withItem(list, item("i2", "Eggs", 1), true);
    list = withItem(list, item("i2", "Eggs", 1), true); // the same event again (replayed onto a fetch)
    list = withoutItem(list, "i1");
    list = withItem(list, item("i1", "Milk", 2, { checked: true }), false); // an answer that was late
    expect(names(list)).toEqual(["Eggs"]);
  });

  test("leave the data as it was when nothing changes, so nothing re-renders", () => {
    const list = pages(item("i1", "Milk", 2));
    expect(withItem(list, item("i1", "Milk", 1), false).pages[0]).toBe(list.pages[0]);
    expect(withoutItem(list, "gone").pages[0]).toBe(list.pages[0]);
  });
});

describe("shoppingRows", () => {
  test("pending changes show at once, on top of the server's items, in order; optimistic adds last", () => {
    const items = [item("i2", "Eggs", 1), item("i1", "Milk", 1), item("i3", "Tea", 1)];
    const pending: PendingChange[] = [
      { id: 1, at: 9e12, kind: "add", input: { name: "Bread" } },
      { id: 2, at: 0, kind: "update", input: { itemId: "i1", checked: true } },
      { id: 3, at: 0, kind: "update", input: { itemId: "i2", name: "Brown eggs" } },
      { id: 4, at: 0, kind: "remove", input: { itemId: "i3" } },
      { id: 5, at: 0, kind: "update", input: { itemId: "gone", checked: true } },
    ];
    const rows = shoppingRows(items, pending, "me");
    expect(rows.map((r) => [r.name, r.checked, r.pending, r.optimistic])).toEqual([
      ["Milk", true, true, false],
      ["Brown eggs", false, true, false],
      ["Bread", false, true, true],
    ]);
    expect(rows[2]).toMatchObject({ id: "pending-1", addedBy: "me" });
  });

  test("a change that is no longer pending is rolled back (failed) or shown from the cache (answered)", () => {
    const items = [item("i1", "Milk", 1)];
    expect(shoppingRows(items, [], "me").map((r) => [r.name, r.checked, r.pending])).toEqual([["Milk", false, false]]);
  });
});

describe("pendingChangeOf", () => {
  test("reads the list's changes by the kind in their mutation key", () => {
    expect(pendingChangeOf(1, 5, ["shopping-change", "add"], { name: "Bread" })).toEqual({ id: 1, at: 5, kind: "add", input: { name: "Bread" } });
    expect(pendingChangeOf(2, 5, ["shopping-change", "update"], { itemId: "i1", checked: true })).toEqual({
      id: 2,
      at: 5,
      kind: "update",
      input: { itemId: "i1", name: undefined, checked: true },
    });
    expect(pendingChangeOf(3, 5, ["shopping-change", "remove"], { itemId: "i1" })).toEqual({ id: 3, at: 5, kind: "remove", input: { itemId: "i1" } });
  });

  test.each([
    { name: "another kind", key: ["shopping-change", "archive"], variables: { itemId: "i1" } },
    { name: "no kind", key: ["shopping-change"], variables: { itemId: "i1" } },
    { name: "no key", key: undefined, variables: { itemId: "i1" } },
    { name: "an add without a name", key: ["shopping-change", "add"], variables: { itemId: "i1" } },
    { name: "an update without an item", key: ["shopping-change", "update"], variables: { name: "Tea" } },
    { name: "an update with a checked that is no boolean", key: ["shopping-change", "update"], variables: { itemId: "i1", checked: "yes" } },
    { name: "a remove without an item", key: ["shopping-change", "remove"], variables: {} },
    { name: "no variables", key: ["shopping-change", "remove"], variables: undefined },
  ])("ignores $name", ({ key, variables }) => {
    expect(pendingChangeOf(1, 5, key, variables)).toBeUndefined();
  });
});
