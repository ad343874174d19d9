// @vitest-environment happy-dom
// @vitest-environment-options {"url": "http://localhost:5173"}
//
// The demo's shopping list against a real `realtimed --dev` whose list is
// longer than one ListItems page: the demo follows next_page_token and shows
// every item. The server runs with a small per-household cap, so the same
// list also shows what an add at the cap gets. And an add whose answer is
// lost after the server committed it still shows in the acting tab, whose
// own event is skipped.
import { Code, ConnectError } from "@connectrpc/connect";
import { useQueryClient, type QueryClient } from "@tanstack/react-query";
import { createRoot, type Root } from "react-dom/client";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { devTokenProvider, RealtimeClient } from "@honeydo/realtime";
import { ShoppingService } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";
import { RealtimeProvider } from "@honeydo/realtime-react";
import { Realtimed, waitFor } from "@honeydo/realtime-testing";
import { QuerySession } from "../query-session";
import { ToastProvider } from "../toasts";
import { ShoppingListView } from "./shopping-list";

/** ITEMS spans two pages of the largest page size (500) and is the server's cap. */
const ITEMS = 620;

let srv: Realtimed;
beforeAll(async () => {
  srv = await Realtimed.launch({ args: ["--rate-limit", "-1", "--max-items-per-household", String(ITEMS)] });
});
afterAll(async () => {
  await srv?.dispose();
});

let root: Root | undefined;
const clients: RealtimeClient[] = [];
afterEach(() => {
  root?.unmount();
  root = undefined;
  for (const c of clients.splice(0)) c.disconnect();
});

function clientFor(
  user: string,
  household: string,
  fetch?: typeof globalThis.fetch,
  callTimeoutMs?: number,
): RealtimeClient {
  const c = new RealtimeClient({
    baseUrl: srv.baseUrl,
    getToken: devTokenProvider({ baseUrl: srv.baseUrl, user, household }),
    crossTab: false,
    stopDelayMs: 10,
    fetch,
    callTimeoutMs,
  });
  clients.push(c);
  return c;
}

test("the demo shows a list longer than one page, and an add at the cap is FAILED_PRECONDITION", async () => {
  const household = `pages-${Date.now().toString(36)}`;
  const bob = clientFor("bob", household).service(ShoppingService);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = next++; i < ITEMS; i = next++) await bob.addItem({ name: `item ${String(i).padStart(4, "0")}` });
    }),
  );

  let listCalls = 0;
  const alice = clientFor("alice", household, (input, init) => {
    if (String(input instanceof Request ? input.url : input).endsWith("/ListItems")) listCalls++;
    return globalThis.fetch(input, init);
  });
  const container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  root.render(
    <RealtimeProvider client={alice}>
      <QuerySession>
        <ToastProvider>
          <ShoppingListView me="alice" />
        </ToastProvider>
      </QuerySession>
    </RealtimeProvider>,
  );
  const rows = () => container.querySelectorAll('[data-testid="item"]');
  await waitFor(`all ${ITEMS} rows shown`, () => rows().length === ITEMS, 60_000, 100);
  expect(listCalls).toBeGreaterThanOrEqual(2);
  const names = [...rows()].map((r) => r.getAttribute("data-name"));
  expect(new Set(names).size).toBe(ITEMS);
  expect(names).toContain("item 0000");
  expect(names).toContain(`item ${String(ITEMS - 1).padStart(4, "0")}`);

  const err = await bob.addItem({ name: "one too many" }).then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  expect(err?.code).toBe(Code.FailedPrecondition);
  expect(err?.rawMessage).toContain(`the list already holds ${ITEMS} items`);

  // In the demo the same add is drawn, then rolled back with words for people.
  await waitFor("the stream live", () => alice.getStatus().state === "connected", 15_000);
  const input = typeAndSubmit(container, "one too many");
  const toast = await waitFor("the toast", () => container.querySelector('[data-testid="toast"]') ?? undefined, 15_000);
  expect(toast.textContent).toContain("Couldn't add “one too many”");
  expect(toast.textContent).toContain("This list is full — remove some items to add more.");
  await waitFor("the text back in the field", () => input.value === "one too many", 5000);
  expect(rows().length).toBe(ITEMS);
  expect(container.querySelector(".item--pending")).toBeNull();
  container.remove();
}, 120_000);

test("a change is drawn at once, and rolled back with a message when the server refuses it", async () => {
  const household = `refused-${Math.random().toString(36).slice(2)}`;
  await clientFor("bob", household).service(ShoppingService).addItem({ name: "Milk" });
  let release = (): void => {};
  const held = new Promise<void>((res) => (release = res));
  const alice = clientFor("alice", household, async (input, init) => {
    if (String(input instanceof Request ? input.url : input).endsWith("/UpdateItem")) await held;
    return globalThis.fetch(input, init);
  });
  const container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  root.render(
    <RealtimeProvider client={alice}>
      <QuerySession>
        <ToastProvider>
          <ShoppingListView me="alice" />
        </ToastProvider>
      </QuerySession>
    </RealtimeProvider>,
  );
  const row = () => container.querySelector<HTMLElement>('[data-testid="item"]');
  await waitFor("Milk shown", () => row()?.dataset.name === "Milk", 15_000);

  // A name the server refuses (a bidi override): shown at once, as pending.
  container.querySelector<HTMLButtonElement>('[data-control="rename"]')?.click();
  const field = await waitFor("the rename field", () => container.querySelector<HTMLInputElement>('[data-control="name"]') ?? undefined, 5000);
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")?.set?.call(field, "Milk\u202e");
  field.dispatchEvent(new Event("input", { bubbles: true }));
  field.form?.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
  await waitFor("the new name drawn", () => row()?.dataset.name === "Milk\u202e", 5000);
  expect(row()?.classList.contains("item--pending")).toBe(true);

  release();
  const toast = await waitFor("the toast", () => container.querySelector('[data-testid="toast"]') ?? undefined, 15_000);
  expect(toast.textContent).toContain("HoneyDo couldn't accept that. Check it and try again.");
  await waitFor("the old name back", () => row()?.dataset.name === "Milk" && !row()?.classList.contains("item--pending"), 5000);
  container.remove();
}, 60_000);

test("a pending mutation under the list's key prefix but of another kind is not drawn as a change", async () => {
  const household = `foreign-${Math.random().toString(36).slice(2)}`;
  const bob = clientFor("bob", household).service(ShoppingService);
  await bob.addItem({ name: "Milk" });
  const eggs = (await bob.addItem({ name: "Eggs" })).item ?? expect.unreachable();
  let release = (): void => {};
  const held = new Promise<void>((res) => (release = res));
  const alice = clientFor("alice", household, async (input, init) => {
    if (String(input instanceof Request ? input.url : input).endsWith("/UpdateItem")) await held;
    return globalThis.fetch(input, init);
  });
  let queryClient: QueryClient | undefined;
  const container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  root.render(
    <RealtimeProvider client={alice}>
      <QuerySession>
        <GrabQueryClient onClient={(c) => (queryClient = c)} />
        <ToastProvider>
          <ShoppingListView me="alice" />
        </ToastProvider>
      </QuerySession>
    </RealtimeProvider>,
  );
  const rowOf = (name: string) =>
    [...container.querySelectorAll<HTMLElement>('[data-testid="item"]')].find((r) => r.dataset.name === name);
  await waitFor("Milk and Eggs shown", () => rowOf("Milk") !== undefined && rowOf("Eggs") !== undefined, 15_000);

  // Some other code's mutation under the same key prefix, held pending,
  // whose variables name Eggs: read as a change it would mark Eggs pending.
  const qc = queryClient ?? expect.unreachable();
  const foreign = qc
    .getMutationCache()
    .build(qc, { mutationKey: ["shopping-change", "archive"], mutationFn: () => held })
    .execute({ itemId: eggs.id });

  // A real change after it: once it is drawn, the pending set has been read with the foreign one in it.
  rowOf("Milk")?.querySelector<HTMLButtonElement>('[data-control="check"]')?.click();
  await waitFor("the check drawn", () => rowOf("Milk")?.classList.contains("item--pending") === true, 5000);
  expect(rowOf("Eggs")?.classList.contains("item--pending")).toBe(false);
  expect(container.querySelectorAll('[data-testid="item"]')).toHaveLength(2);

  release();
  await foreign;
  await waitFor("the check answered", () => rowOf("Milk")?.classList.contains("item--pending") === false, 15_000);
  container.remove();
}, 60_000);

/** GrabQueryClient hands the test the QuerySession's cache. */
function GrabQueryClient({ onClient }: { onClient: (c: QueryClient) => void }): null {
  onClient(useQueryClient());
  return null;
}

/** typeAndSubmit enters `text` into the add form the way a person does. */
function typeAndSubmit(container: HTMLElement, text: string): HTMLInputElement {
  const input = container.querySelector<HTMLInputElement>(".add__input");
  const form = container.querySelector<HTMLFormElement>("form.add");
  if (!input || !form) throw new Error("no add form");
  // React tracks the value it set; the native setter makes the change its own.
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")?.set?.call(input, text);
  input.dispatchEvent(new Event("input", { bubbles: true }));
  form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
  return input;
}

describe("an add whose answer is lost after the server committed it", () => {
  // Each fetch lets AddItem reach the server and waits for its whole answer,
  // then loses it: as a dropped connection does, or as a server that stops
  // answering does (the call then times out).
  const cases: { name: string; lose: (signal: AbortSignal | null | undefined) => Promise<Response>; timeoutMs?: number }[] = [
    {
      name: "connection dropped",
      lose: () => Promise.reject(new TypeError("Failed to fetch")),
    },
    {
      name: "no answer within the call timeout",
      lose: (signal) =>
        new Promise((_, reject) => {
          signal?.addEventListener("abort", () => reject(signal.reason as Error));
        }),
      timeoutMs: 1000,
    },
  ];
  test.each(cases)("$name: the acting tab shows it, clears the input and the server holds it once", async ({ lose, timeoutMs }) => {
    const household = `lost-${Math.random().toString(36).slice(2)}`;
    let lost = 0;
    const alice = clientFor(
      "alice",
      household,
      async (input, init) => {
        const res = await globalThis.fetch(input, init);
        if (!String(input instanceof Request ? input.url : input).endsWith("/AddItem")) return res;
        await res.arrayBuffer();
        lost++;
        return lose(init?.signal);
      },
      timeoutMs,
    );
    const container = document.createElement("div");
    document.body.append(container);
    root = createRoot(container);
    root.render(
      <RealtimeProvider client={alice}>
        <QuerySession>
          <ToastProvider>
            <ShoppingListView me="alice" />
          </ToastProvider>
        </QuerySession>
      </RealtimeProvider>,
    );
    await waitFor("the empty list", () => container.querySelector(".empty") !== null, 15_000);
    await waitFor("the stream live", () => alice.getStatus().state === "connected", 15_000);

    const input = typeAndSubmit(container, "Oat milk");
    const settled = () =>
      [...container.querySelectorAll('[data-testid="item"]')].filter((r) => !r.classList.contains("item--pending"));
    await waitFor("the added item shown as stored", () => settled().some((r) => r.getAttribute("data-name") === "Oat milk"), 30_000);
    expect(lost).toBe(1);
    await waitFor("the input cleared", () => input.value === "", 10_000);
    expect(container.textContent).not.toContain("Couldn't add");

    const bob = clientFor("bob", household).service(ShoppingService);
    const { items } = await bob.listItems({});
    expect(items.map((i) => i.name)).toEqual(["Oat milk"]);
    container.remove();
  }, 60_000);
});
