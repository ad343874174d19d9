import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { ShoppingItem } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";

/** A change the user made that the server has not confirmed yet. */
export type PendingOp =
  | { readonly kind: "add"; readonly opId: string; readonly name: string; readonly at: number }
  | {
      readonly kind: "update";
      readonly opId: string;
      readonly itemId: string;
      readonly name?: string;
      readonly checked?: boolean;
    }
  | { readonly kind: "remove"; readonly opId: string; readonly itemId: string };

/**
 * ShoppingState is a household list as this tab knows it: the server's
 * items (newest version of each wins), tombstones of removed items, and the
 * user's pending changes shown on top until the server answers.
 *
 * `seq` counts the changes applied; `touched`/`removed` remember at which
 * seq an item last changed, so that a refetch that started earlier does not
 * undo a newer event.
 */
export interface ShoppingState {
  readonly loaded: boolean;
  readonly seq: number;
  readonly items: ReadonlyMap<string, ShoppingItem>;
  readonly touched: ReadonlyMap<string, number>;
  readonly removed: ReadonlyMap<string, number>;
  readonly pending: readonly PendingOp[];
}

export type ShoppingAction =
  /** A ListItems answer to a fetch that started when state.seq was `since`. */
  | { readonly type: "loaded"; readonly items: readonly ShoppingItem[]; readonly since: number }
  /** An item from an event or an RPC answer. */
  | { readonly type: "upsert"; readonly item: ShoppingItem }
  /** An item is gone (event or RPC answer). */
  | { readonly type: "removed"; readonly itemId: string }
  | { readonly type: "pending"; readonly op: PendingOp }
  /** The server answered (or failed) a pending op: stop showing it. */
  | { readonly type: "settled"; readonly opId: string };

export const initialShoppingState: ShoppingState = {
  loaded: false,
  seq: 0,
  items: new Map(),
  touched: new Map(),
  removed: new Map(),
  pending: [],
};

/** isNewer: a copy replaces another only with a higher version. */
function isNewer(incoming: ShoppingItem, current: ShoppingItem | undefined): boolean {
  return current === undefined || incoming.version > current.version;
}

export function shoppingReducer(state: ShoppingState, action: ShoppingAction): ShoppingState {
  switch (action.type) {
    case "loaded": {
      const items = new Map<string, ShoppingItem>();
      for (const item of action.items) {
        const removedAt = state.removed.get(item.id);
        if (removedAt !== undefined && removedAt > action.since) continue; // removed since the fetch began
        const mine = state.items.get(item.id);
        items.set(item.id, mine !== undefined && mine.version > item.version ? mine : item);
      }
      // Items that arrived by event after the fetch began are newer than the list.
      for (const [id, item] of state.items) {
        if (!items.has(id) && (state.touched.get(id) ?? 0) > action.since) items.set(id, item);
      }
      return { ...state, loaded: true, items };
    }
    case "upsert": {
      const { item } = action;
      if (state.removed.has(item.id) || !isNewer(item, state.items.get(item.id))) return state;
      const seq = state.seq + 1;
      return {
        ...state,
        seq,
        items: new Map(state.items).set(item.id, item),
        touched: new Map(state.touched).set(item.id, seq),
      };
    }
    case "removed": {
      const seq = state.seq + 1;
      const items = new Map(state.items);
      items.delete(action.itemId);
      return { ...state, seq, items, removed: new Map(state.removed).set(action.itemId, seq) };
    }
    case "pending":
      return { ...state, pending: [...state.pending, action.op] };
    case "settled":
      return { ...state, pending: state.pending.filter((op) => op.opId !== action.opId) };
  }
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

/** visibleItems derives the rows to show, oldest first, optimistic adds last. */
export function visibleItems(state: ShoppingState, me: string): ItemView[] {
  const rows = new Map<string, ItemView>();
  const sorted = [...state.items.values()].sort(
    (a, b) => createdAt(a) - createdAt(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
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
  for (const op of state.pending) {
    switch (op.kind) {
      case "add":
        rows.set(op.opId, {
          id: op.opId,
          name: op.name,
          checked: false,
          quantity: 0,
          unit: "",
          addedBy: me,
          createdAt: op.at,
          pending: true,
          optimistic: true,
        });
        break;
      case "update": {
        const row = rows.get(op.itemId);
        if (row === undefined) break;
        rows.set(op.itemId, {
          ...row,
          name: op.name ?? row.name,
          checked: op.checked ?? row.checked,
          pending: true,
        });
        break;
      }
      case "remove":
        rows.delete(op.itemId);
        break;
    }
  }
  return [...rows.values()];
}

function createdAt(item: ShoppingItem): number {
  return item.createTime ? timestampMs(item.createTime) : 0;
}
