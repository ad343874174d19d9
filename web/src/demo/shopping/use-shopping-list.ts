import { useCallback, useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "react";
import { ShoppingService, type ShoppingItem } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";
import { useRealtimeEvent, useRealtimeResync, useRealtimeService, useRealtimeStatus } from "@honeydo/realtime-react";
import { humanError, outcomeUnknown } from "../errors";
import { newId } from "../session";
import { useToasts } from "../toasts";
import { initialShoppingState, shoppingReducer, visibleItems, type ItemView } from "./shopping-state";

/** LIST_PAGE_SIZE is ListItems' largest page: the fewest round trips for a long list. */
const LIST_PAGE_SIZE = 500;

export interface ShoppingList {
  readonly rows: readonly ItemView[];
  readonly loaded: boolean;
  /** loadError says, for people, why the last fetch failed; undefined once one succeeds. */
  readonly loadError: string | undefined;
  /** resyncs counts refetches asked for by the stream (initial, or a failed resume). */
  readonly resyncs: number;
  refetch(): Promise<void>;
  /** Each change resolves false when it failed (a toast has said why). */
  add(name: string): Promise<boolean>;
  setChecked(itemId: string, checked: boolean): Promise<boolean>;
  rename(itemId: string, name: string): Promise<boolean>;
  remove(itemId: string): Promise<boolean>;
}

/**
 * useShoppingList is the seed's "usage pattern for modules": subscribe to
 * the module's events first, then fetch; refetch on resync; change through
 * the module's service with optimistic updates reconciled by version.
 *
 * This tab applies the answer to its own change; the client library skips
 * the event that change causes here and delivers it to the user's other
 * tabs and devices, so nothing is relayed by hand. A change whose answer
 * was lost (a timeout, a dropped connection) may have been applied all the
 * same, and then this tab never gets its event: it refetches the list and
 * reports the change as failed only if the list does not show it.
 */
export function useShoppingList(me: string): ShoppingList {
  const shopping = useRealtimeService(ShoppingService);
  const { push } = useToasts();
  const [state, dispatch] = useReducer(shoppingReducer, initialShoppingState);
  const [loadError, setLoadError] = useState<string>();
  const [resyncs, setResyncs] = useState(0);
  const seqRef = useRef(state.seq);
  const itemsRef = useRef(state.items);
  useLayoutEffect(() => {
    seqRef.current = state.seq;
    itemsRef.current = state.items;
  });
  const fetchGen = useRef(0);

  // 1. Events: other people's changes, and this user's from other tabs and devices.
  useRealtimeEvent("itemAdded", ({ item }) => item && dispatch({ type: "upsert", item }));
  useRealtimeEvent("itemUpdated", ({ item }) => item && dispatch({ type: "upsert", item }));
  useRealtimeEvent("itemRemoved", ({ itemId }) => dispatch({ type: "removed", itemId }));

  // 2. State: fetched on mount and whenever the stream says events may be missing.
  // ListItems pages; the list is shown once every page is in, so that rows
  // never jump around while pages arrive. Pages keep the list's order and
  // items added meanwhile come last, so concatenating them loses nothing.
  // load resolves to the items shown, or undefined if it failed or a newer
  // fetch superseded it.
  const load = useCallback(async (): Promise<readonly ShoppingItem[] | undefined> => {
    const gen = ++fetchGen.current;
    const since = seqRef.current;
    try {
      const items: ShoppingItem[] = [];
      let pageToken = "";
      do {
        const res = await shopping.listItems({ pageSize: LIST_PAGE_SIZE, pageToken });
        if (gen !== fetchGen.current) return undefined;
        items.push(...res.items);
        pageToken = res.nextPageToken;
      } while (pageToken !== "");
      dispatch({ type: "loaded", items, since });
      setLoadError(undefined);
      return items;
    } catch (err) {
      if (gen === fetchGen.current) setLoadError(humanError(err, "load"));
      return undefined;
    }
  }, [shopping]);
  const refetch = useCallback(async () => {
    await load();
  }, [load]);
  // A failed fetch is retried when the stream is back: a resumed stream
  // brings no resync, and the list would stay stale (or missing) until one.
  const connected = useRealtimeStatus().state === "connected";
  const failed = loadError !== undefined;
  useEffect(() => {
    if (connected && failed) void refetch();
  }, [connected, failed, refetch]);
  useRealtimeResync(() => {
    setResyncs((n) => n + 1);
    void refetch();
  });
  useEffect(() => {
    void refetch();
  }, [refetch]);

  // 3. Changes: optimistic, then reconciled with the server's answer. When
  // the answer is lost, the refetched list is the answer: `landed` tells
  // whether it shows the change.
  const mutate = useCallback(
    async (
      op: Parameters<typeof dispatch>[0] & { type: "pending" },
      call: () => Promise<ShoppingItem | undefined>,
      failure: string,
      landed: (items: readonly ShoppingItem[]) => boolean,
    ) => {
      dispatch(op);
      try {
        const item = await call();
        if (item) dispatch({ type: "upsert", item });
        return true;
      } catch (err) {
        if (outcomeUnknown(err)) {
          const items = await load();
          if (items !== undefined && landed(items)) return true;
        }
        push({ level: "error", title: failure, message: humanError(err, "change") });
        return false;
      } finally {
        dispatch({ type: "settled", opId: op.op.opId });
      }
    },
    [push, load],
  );

  // AddItem takes no id from the client, so a lost add is recognised by
  // its name: an item of that name, added by this user, that was not on
  // the list when the add began.
  const add = useCallback(
    (name: string) => {
      const key = nameKey(name);
      const before = new Set([...itemsRef.current.values()].filter((i) => nameKey(i.name) === key).map((i) => i.id));
      return mutate(
        { type: "pending", op: { kind: "add", opId: newId("tmp"), name, at: Date.now() } },
        async () => (await shopping.addItem({ name })).item,
        `Couldn't add “${name}”`,
        (items) => items.some((i) => i.addedByUserId === me && nameKey(i.name) === key && !before.has(i.id)),
      );
    },
    [mutate, shopping, me],
  );

  const update = useCallback(
    (itemId: string, patch: { name?: string; checked?: boolean }, failure: string) =>
      mutate(
        { type: "pending", op: { kind: "update", opId: newId("upd"), itemId, ...patch } },
        async () => (await shopping.updateItem({ itemId, ...patch })).item,
        failure,
        (items) => {
          const item = items.find((i) => i.id === itemId);
          return (
            item !== undefined &&
            (patch.name === undefined || nameKey(item.name) === nameKey(patch.name)) &&
            (patch.checked === undefined || item.checked === patch.checked)
          );
        },
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
        (items) => !items.some((i) => i.id === itemId),
      ),
    [mutate, shopping],
  );

  const rows = useMemo(() => visibleItems(state, me), [state, me]);
  return { rows, loaded: state.loaded, loadError, resyncs, refetch, add, setChecked, rename, remove };
}

/**
 * nameKey approximates the server's normalization of names (NFC, surrounding
 * white space and zero-width characters trimmed), so that a name as typed
 * matches the name as stored.
 */
function nameKey(name: string): string {
  return name.normalize("NFC").replace(/^[\s\u200b-\u200d\u2060\ufeff]+|[\s\u200b-\u200d\u2060\ufeff]+$/g, "");
}
