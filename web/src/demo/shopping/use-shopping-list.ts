import type { ConnectError } from "@connectrpc/connect";
import { createConnectQueryKey, useInfiniteQuery, useMutation, useTransport } from "@connectrpc/connect-query";
import { notifyManager, useMutationState, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { ShoppingService, type ShoppingItem } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";
import { useRealtimeResync, useRealtimeStatus } from "@honeydo/realtime-react";
import { useRealtimeQueries } from "@honeydo/realtime-react/query";
import { humanError, outcomeUnknown } from "../errors";
import { useToasts } from "../toasts";
import { itemsOf, pendingChangeOf, shoppingRows, withItem, withoutItem, type ItemView } from "./shopping-cache";

/** LIST_INPUT asks for ListItems' largest page (500): the fewest round trips for a long list. */
const LIST_INPUT = { pageSize: 500, pageToken: "" };
/** CHANGE is the mutation key prefix of the list's changes, drawn while pending. */
const CHANGE = "shopping-change";

export interface ShoppingList {
  readonly rows: readonly ItemView[];
  /** loaded is true once every page of the list is in. */
  readonly loaded: boolean;
  /** loadError says, for people, why the last fetch failed; undefined once one succeeds. */
  readonly loadError: string | undefined;
  /** resyncs counts refetches asked for by the stream (initial, or a failed resume). */
  readonly resyncs: number;
  refetch(): Promise<unknown>;
  /** Each change resolves false when it failed (a toast has said why). */
  add(name: string): Promise<boolean>;
  setChecked(itemId: string, checked: boolean): Promise<boolean>;
  rename(itemId: string, name: string): Promise<boolean>;
  remove(itemId: string): Promise<boolean>;
}

/**
 * useShoppingList is the household list on connect-query: ListItems as an
 * infinite query (every page), the changes as mutations drawn on top of it
 * while pending, and useRealtimeQueries keeping the cache in step with the
 * stream (events patch it, resyncs refetch it).
 *
 * This tab patches in the answer to its own change; the client skips the
 * event that change causes here and delivers it to the user's other tabs
 * and devices. A change whose answer was lost (a timeout, a dropped
 * connection) may have been applied all the same, and then this tab never
 * gets its event: it refetches the list and reports the change as failed
 * only if the list does not show it.
 */
export function useShoppingList(me: string): ShoppingList {
  const queryClient = useQueryClient();
  const transport = useTransport();
  const { push } = useToasts();
  const listKey = useMemo(
    () =>
      createConnectQueryKey({
        schema: ShoppingService.method.listItems,
        transport,
        input: LIST_INPUT,
        pageParamKey: "pageToken",
        cardinality: "infinite",
      }),
    [transport],
  );

  // 1. Events: other people's changes, and this user's from other tabs and devices.
  const patch = useRealtimeQueries({
    queryKey: listKey,
    events: {
      itemAdded: (list, { item }) => (item ? withItem(list, item, true) : list),
      itemUpdated: (list, { item }) => (item ? withItem(list, item, false) : list),
      itemRemoved: (list, { itemId }) => withoutItem(list, itemId),
    },
  });

  // 2. The list, page after page. A failed load is retried when the stream
  // is back: a resumed stream brings no resync, and the list would stay
  // missing until one.
  const list = useInfiniteQuery(ShoppingService.method.listItems, LIST_INPUT, {
    pageParamKey: "pageToken",
    getNextPageParam: (page) => page.nextPageToken || undefined,
  });
  const { hasNextPage, isFetching, isError, fetchNextPage, refetch } = list;
  useEffect(() => {
    if (hasNextPage && !isFetching && !isError) void fetchNextPage();
  }, [hasNextPage, isFetching, isError, fetchNextPage]);
  const connected = useRealtimeStatus().state === "connected";
  useEffect(() => {
    if (connected && isError) void refetch();
  }, [connected, isError, refetch]);
  const [resyncs, setResyncs] = useState(0);
  useRealtimeResync(() => setResyncs((n) => n + 1));

  // 3. Changes: pending ones are drawn on top of the list (a failure rolls
  // back by ending), answers are patched in. After a lost answer the
  // refetched list is the answer; the change stays pending until it is in.
  const onError = (err: ConnectError) =>
    outcomeUnknown(err) ? queryClient.refetchQueries({ queryKey: listKey, exact: true }) : undefined;
  const addItem = useMutation(ShoppingService.method.addItem, {
    mutationKey: [CHANGE, "add"],
    onError,
    onSuccess: ({ item }) => item && patch((l) => withItem(l, item, true)),
  });
  const updateItem = useMutation(ShoppingService.method.updateItem, {
    mutationKey: [CHANGE, "update"],
    onError,
    onSuccess: ({ item }) => item && patch((l) => withItem(l, item, false)),
  });
  const removeItem = useMutation(ShoppingService.method.removeItem, {
    mutationKey: [CHANGE, "remove"],
    onError,
    onSuccess: (_, { itemId = "" }) => patch((l) => withoutItem(l, itemId)),
  });
  const pending = useMutationState({
    filters: { mutationKey: [CHANGE], status: "pending" },
    select: (m) => pendingChangeOf(m.mutationId, m.state.submittedAt, m.options.mutationKey, m.state.variables),
  });

  const change = async (send: () => Promise<unknown>, failure: string, landed: (items: ShoppingItem[]) => boolean) => {
    try {
      await send();
      return true;
    } catch (err) {
      if (outcomeUnknown(err) && landed(itemsOf(queryClient.getQueryData(listKey)))) return true;
      // Scheduled like the cache's notifications: the list drops the failed change first.
      notifyManager.schedule(() => push({ level: "error", title: failure, message: humanError(err, "change") }));
      return false;
    }
  };
  // AddItem takes no id from the client, so a lost add is recognised by
  // its name: an item of that name, added by this user, that was not on
  // the list when the add began.
  const add = (name: string) => {
    const key = nameKey(name);
    const before = new Set(itemsOf(queryClient.getQueryData(listKey)).filter((i) => nameKey(i.name) === key).map((i) => i.id));
    return change(
      () => addItem.mutateAsync({ name }),
      `Couldn't add “${name}”`,
      (items) => items.some((i) => i.addedByUserId === me && nameKey(i.name) === key && !before.has(i.id)),
    );
  };
  const update = (itemId: string, fields: { name?: string; checked?: boolean }, failure: string) =>
    change(() => updateItem.mutateAsync({ itemId, ...fields }), failure, (items) => {
      const item = items.find((i) => i.id === itemId);
      return (
        item !== undefined &&
        (fields.name === undefined || nameKey(item.name) === nameKey(fields.name)) &&
        (fields.checked === undefined || item.checked === fields.checked)
      );
    });

  const rows = useMemo(
    () => shoppingRows(itemsOf(list.data), pending.filter((c) => c !== undefined), me),
    [list.data, pending, me],
  );
  return {
    rows,
    loaded: list.data !== undefined && !hasNextPage,
    loadError: list.error ? humanError(list.error, "load") : undefined,
    resyncs,
    refetch,
    add,
    setChecked: (itemId, checked) => update(itemId, { checked }, "Couldn't update the item"),
    rename: (itemId, name) => update(itemId, { name }, `Couldn't rename to “${name}”`),
    remove: (itemId) =>
      change(
        () => removeItem.mutateAsync({ itemId }),
        "Couldn't remove the item",
        (items) => !items.some((i) => i.id === itemId),
      ),
  };
}

/**
 * nameKey approximates the server's normalization of names (NFC, surrounding
 * white space and zero-width characters trimmed), so that a name as typed
 * matches the name as stored.
 */
function nameKey(name: string): string {
  return name.normalize("NFC").replace(/^[\s\u200b-\u200d\u2060\ufeff]+|[\s\u200b-\u200d\u2060\ufeff]+$/g, "");
}
