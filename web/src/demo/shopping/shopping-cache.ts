import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { InfiniteData } from "@tanstack/react-query";
import type {
  AddItemRequest,
  ListItemsResponse,
  RemoveItemRequest,
  ShoppingItem,
  UpdateItemRequest,
} from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";

/** ShoppingPages is the cached ListItems query: every page read so far. */
export type ShoppingPages = InfiniteData<ListItemsResponse>;

/**
 * withItem puts a copy of an item into the cached pages. A copy replaces
 * the cached one only with a higher version, so applying it twice, or late,
 * changes nothing. Only an add (`insert`) puts an unknown item on the list,
 * at the end: a late update must not bring back an item removed meanwhile.
 */
export function withItem(list: ShoppingPages, item: ShoppingItem, insert: boolean): ShoppingPages {
  const known = list.pages.some((p) => p.items.some((i) => i.id === item.id));
  if (!known) {
    if (!insert || list.pages.length === 0) return list;
    const last = list.pages.length - 1;
    return { ...list, pages: list.pages.map((p, n) => (n === last ? { ...p, items: [...p.items, item] } : p)) };
  }
  const pages = list.pages.map((p) =>
    p.items.some((i) => i.id === item.id && item.version > i.version)
      ? { ...p, items: p.items.map((i) => (i.id === item.id ? item : i)) }
      : p,
  );
  return { ...list, pages };
}

/** withoutItem drops an item from the cached pages. */
export function withoutItem(list: ShoppingPages, itemId: string): ShoppingPages {
  const pages = list.pages.map((p) => (p.items.some((i) => i.id === itemId) ? { ...p, items: p.items.filter((i) => i.id !== itemId) } : p));
  return { ...list, pages };
}

/** itemsOf lists the cached items. */
export function itemsOf(list: ShoppingPages | undefined): ShoppingItem[] {
  return list?.pages.flatMap((p) => p.items) ?? [];
}

/** PendingChange is a change this tab sent that the server has not answered yet. */
export type PendingChange = { readonly id: number; readonly at: number } & (
  | { readonly kind: "add"; readonly input: Pick<AddItemRequest, "name"> }
  | { readonly kind: "update"; readonly input: Pick<UpdateItemRequest, "itemId" | "name" | "checked"> }
  | { readonly kind: "remove"; readonly input: Pick<RemoveItemRequest, "itemId"> }
);

/**
 * pendingChangeOf reads a pending mutation of the list as a PendingChange:
 * the kind is the second part of its mutation key, the input its variables.
 * It is undefined for any other kind, or for variables not of that kind's
 * shape, so that no mutation is ever drawn as a change it is not.
 */
export function pendingChangeOf(id: number, at: number, key: readonly unknown[] | undefined, variables: unknown): PendingChange | undefined {
  const kind = key?.[1];
  if (!isChangeKind(kind) || typeof variables !== "object" || variables === null) return undefined;
  const input: { readonly itemId?: unknown; readonly name?: unknown; readonly checked?: unknown } = variables;
  switch (kind) {
    case "add":
      return typeof input.name === "string" ? { id, at, kind, input: { name: input.name } } : undefined;
    case "remove":
      return typeof input.itemId === "string" ? { id, at, kind, input: { itemId: input.itemId } } : undefined;
    case "update": {
      const { itemId, name, checked } = input;
      if (typeof itemId !== "string") return undefined;
      if (name !== undefined && typeof name !== "string") return undefined;
      if (checked !== undefined && typeof checked !== "boolean") return undefined;
      return { id, at, kind, input: { itemId, name, checked } };
    }
  }
}

const CHANGE_KINDS: readonly unknown[] = ["add", "update", "remove"] satisfies PendingChange["kind"][];

function isChangeKind(kind: unknown): kind is PendingChange["kind"] {
  return CHANGE_KINDS.includes(kind);
}

/** ItemView is one row as shown: the server's item with pending changes applied. */
export interface ItemView {
  readonly id: string;
  readonly name: string;
  readonly checked: boolean;
  readonly quantity: number;
  readonly unit: string;
  readonly addedBy: string;
  readonly createdAt: number;
  /** True while a change of this row waits for the server. */
  readonly pending: boolean;
  /** True for an added item the server has not confirmed (no real id yet). */
  readonly optimistic: boolean;
}

/**
 * shoppingRows derives the rows to show, oldest first, with the pending
 * changes drawn on top: an add is a row of its own until its answer, an
 * update shows its values, a remove hides the row. A change that fails
 * simply stops being pending, which rolls it back.
 */
export function shoppingRows(items: readonly ShoppingItem[], pending: readonly PendingChange[], me: string): ItemView[] {
  const rows = new Map<string, ItemView>();
  const sorted = [...items].sort((a, b) => createdAt(a) - createdAt(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const item of sorted) {
    rows.set(item.id, {
      id: item.id,
      name: item.name,
      checked: item.checked,
      quantity: item.quantity,
      unit: item.unit,
      addedBy: item.addedByUserId,
      createdAt: createdAt(item),
      pending: false,
      optimistic: false,
    });
  }
  for (const change of pending) {
    if (change.kind === "add") {
      const id = `pending-${change.id}`;
      const row = { id, name: change.input.name, checked: false, quantity: 0, unit: "", addedBy: me, createdAt: change.at };
      rows.set(id, { ...row, pending: true, optimistic: true });
      continue;
    }
    const row = rows.get(change.input.itemId);
    if (row === undefined) continue;
    if (change.kind === "remove") rows.delete(row.id);
    else rows.set(row.id, { ...row, name: change.input.name ?? row.name, checked: change.input.checked ?? row.checked, pending: true });
  }
  return [...rows.values()];
}

function createdAt(item: ShoppingItem): number {
  return item.createTime ? timestampMs(item.createTime) : 0;
}
