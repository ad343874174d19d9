import { ConnectError } from "@connectrpc/connect";
import { useCallback, useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "react";
import { ShoppingService, type ShoppingItem } from "../../gen/honeydo/shopping/v1/shopping_pb";
import { useRealtimeEvent, useRealtimeResync, useRealtimeService } from "../../react";
import { newId } from "../session";
import { useToasts } from "../toasts";
import { initialShoppingState, shoppingReducer, visibleItems, type ItemView } from "./shopping-state";

export interface ShoppingList {
  readonly rows: readonly ItemView[];
  readonly loaded: boolean;
  readonly loadError: string | undefined;
  /** resyncs counts refetches asked for by the stream (initial, or a failed resume). */
  readonly resyncs: number;
  refetch(): Promise<void>;
  add(name: string): Promise<void>;
  setChecked(itemId: string, checked: boolean): Promise<void>;
  rename(itemId: string, name: string): Promise<void>;
  remove(itemId: string): Promise<void>;
}

/**
 * useShoppingList is the seed's "usage pattern for modules": subscribe to
 * the module's events first, then fetch; refetch on resync; change through
 * the module's service with optimistic updates reconciled by version.
 *
 * This tab applies the answer to its own change; the client library skips
 * the event that change causes here and delivers it to the user's other
 * tabs and devices, so nothing is relayed by hand.
 */
export function useShoppingList(me: string): ShoppingList {
  const shopping = useRealtimeService(ShoppingService);
  const { push } = useToasts();
  const [state, dispatch] = useReducer(shoppingReducer, initialShoppingState);
  const [loadError, setLoadError] = useState<string>();
  const [resyncs, setResyncs] = useState(0);
  const seqRef = useRef(state.seq);
  useLayoutEffect(() => {
    seqRef.current = state.seq;
  });
  const fetchGen = useRef(0);

  // 1. Events: other people's changes, and this user's from other tabs and devices.
  useRealtimeEvent("itemAdded", ({ item }) => item && dispatch({ type: "upsert", item }));
  useRealtimeEvent("itemUpdated", ({ item }) => item && dispatch({ type: "upsert", item }));
  useRealtimeEvent("itemRemoved", ({ itemId }) => dispatch({ type: "removed", itemId }));

  // 2. State: fetched on mount and whenever the stream says events may be missing.
  const refetch = useCallback(async () => {
    const gen = ++fetchGen.current;
    const since = seqRef.current;
    try {
      const res = await shopping.listItems({});
      if (gen !== fetchGen.current) return;
      dispatch({ type: "loaded", items: res.items, since });
      setLoadError(undefined);
    } catch (err) {
      if (gen === fetchGen.current) setLoadError(ConnectError.from(err).rawMessage);
    }
  }, [shopping]);
  useRealtimeResync(() => {
    setResyncs((n) => n + 1);
    void refetch();
  });
  useEffect(() => {
    void refetch();
  }, [refetch]);

  // 3. Changes: optimistic, then reconciled with the server's answer.
  const mutate = useCallback(
    async (
      op: Parameters<typeof dispatch>[0] & { type: "pending" },
      call: () => Promise<ShoppingItem | undefined>,
      failure: string,
    ) => {
      dispatch(op);
      try {
        const item = await call();
        if (item) dispatch({ type: "upsert", item });
      } catch (err) {
        push({ level: "error", title: failure, message: ConnectError.from(err).rawMessage });
      } finally {
        dispatch({ type: "settled", opId: op.op.opId });
      }
    },
    [push],
  );

  const add = useCallback(
    (name: string) =>
      mutate(
        { type: "pending", op: { kind: "add", opId: newId("tmp"), name, at: Date.now() } },
        async () => (await shopping.addItem({ name })).item,
        `Couldn't add “${name}”`,
      ),
    [mutate, shopping],
  );

  const update = useCallback(
    (itemId: string, patch: { name?: string; checked?: boolean }, failure: string) =>
      mutate(
        { type: "pending", op: { kind: "update", opId: newId("upd"), itemId, ...patch } },
        async () => (await shopping.updateItem({ itemId, ...patch })).item,
        failure,
      ),
    [mutate, shopping],
  );

  const setChecked = useCallback(
    (itemId: string, checked: boolean) => update(itemId, { checked }, "Couldn't update the item"),
    [update],
  );
  const rename = useCallback(
    (itemId: string, name: string) => update(itemId, { name }, `Couldn't rename to “${name}”`),
    [update],
  );

  const remove = useCallback(
    (itemId: string) =>
      mutate(
        { type: "pending", op: { kind: "remove", opId: newId("rm"), itemId } },
        async () => {
          await shopping.removeItem({ itemId });
          dispatch({ type: "removed", itemId });
          return undefined;
        },
        "Couldn't remove the item",
      ),
    [mutate, shopping],
  );

  const rows = useMemo(() => visibleItems(state, me), [state, me]);
  return { rows, loaded: state.loaded, loadError, resyncs, refetch, add, setChecked, rename, remove };
}
