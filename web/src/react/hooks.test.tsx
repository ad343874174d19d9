// @vitest-environment happy-dom
import { create } from "@bufbuild/protobuf";
import { act, StrictMode, useState, type ReactNode } from "react";
import { createRoot, type Root } from "react-dom/client";
import { renderToStaticMarkup } from "react-dom/server";
import { afterEach, beforeAll, expect, test } from "vitest";
import { ItemAddedSchema, ShoppingService } from "../gen/honeydo/shopping/v1/shopping_pb";
import { RealtimeClient, type RealtimeStatus, type ResyncReason } from "../client";
import { FakeRealtime, waitFor } from "../testing";
import {
  ConnectionStatus,
  RealtimeProvider,
  useRealtimeClient,
  useRealtimeEvent,
  useRealtimeResync,
  useRealtimeService,
  useRealtimeStatus,
} from ".";

declare global {
  var IS_REACT_ACT_ENVIRONMENT: boolean | undefined;
}

beforeAll(() => {
  globalThis.IS_REACT_ACT_ENVIRONMENT = true;
});

let root: Root | undefined;
let container: HTMLElement | undefined;
afterEach(() => {
  act(() => root?.unmount());
  container?.remove();
  root = undefined;
});

function render(node: ReactNode): HTMLElement {
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  act(() => root?.render(node));
  return container;
}

function fakeClient(): { fake: FakeRealtime; client: RealtimeClient } {
  const fake = new FakeRealtime();
  const client = new RealtimeClient({
    baseUrl: "http://fake",
    getToken: () => "t",
    transport: fake.transport,
    crossTab: false,
    stopDelayMs: 10,
  });
  return { fake, client };
}

const added = (name: string) => ({ case: "itemAdded" as const, value: create(ItemAddedSchema, { item: { name } }) });

test("a hook outside <RealtimeProvider> throws an error that says so", () => {
  function Orphan(): ReactNode {
    useRealtimeStatus();
    return null;
  }
  expect(() => renderToStaticMarkup(<Orphan />)).toThrow(/no <RealtimeProvider> above this component/);
});

test("useRealtimeEvent calls the latest handler without resubscribing and unsubscribes on unmount", async () => {
  const { fake, client } = fakeClient();
  const calls: string[] = [];
  let setLabel: (s: string) => void = () => {};
  function Listener(): ReactNode {
    const [label, set] = useState("first");
    setLabel = set;
    useRealtimeEvent("itemAdded", (p, e) => calls.push(`${label}:${p.item?.name}:${e.senderUserId}`));
    return <span>{label}</span>;
  }
  function App({ show }: { show: boolean }): ReactNode {
    return <RealtimeProvider client={client}>{show ? <Listener /> : null}</RealtimeProvider>;
  }
  render(
    <StrictMode>
      <App show />
    </StrictMode>,
  );
  await waitFor("stream", () => client.getStatus().state === "connected");
  await act(async () => {
    fake.push(added("Milk"));
    await waitFor("1 call", () => calls.length === 1);
  });
  act(() => setLabel("second"));
  await act(async () => {
    fake.push(added("Eggs"));
    await waitFor("2 calls", () => calls.length === 2);
  });
  expect(calls).toEqual(["first:Milk:bob", "second:Eggs:bob"]);
  expect(fake.subscribes).toBe(1); // StrictMode's double effects did not reopen the stream

  act(() =>
    root?.render(
      <StrictMode>
        <App show={false} />
      </StrictMode>,
    ),
  );
  fake.push(added("Bread"));
  await waitFor("stream closed after the last listener", () => fake.open === 0);
  expect(calls).toHaveLength(2);
  expect(client.getStatus().state).toBe("idle");
});

test("useRealtimeStatus and useRealtimeResync follow the client; useRealtimeService is stable", async () => {
  const { client } = fakeClient();
  const seen: RealtimeStatus["state"][] = [];
  const resyncs: ResyncReason[] = [];
  const services = new Set<unknown>();
  function Probe(): ReactNode {
    const status = useRealtimeStatus();
    seen.push(status.state);
    useRealtimeResync((r) => resyncs.push(r));
    services.add(useRealtimeService(ShoppingService));
    const same = useRealtimeClient() === client;
    return <span data-testid="probe">{`${status.state}:${String(same)}`}</span>;
  }
  const el = render(
    <RealtimeProvider client={client}>
      <Probe />
    </RealtimeProvider>,
  );
  await act(() => waitFor("connected", () => client.getStatus().state === "connected"));
  expect(el.textContent).toBe("connected:true");
  expect(seen[0]).toBe("idle");
  expect(seen).toContain("connected");
  expect(resyncs).toEqual(["initial"]);
  expect(services.size).toBe(1);
  act(() => client.disconnect());
  expect(el.textContent).toBe("disconnected:true");
});

test("<ConnectionStatus/> is an accessible live region with an icon, a label and a tooltip", async () => {
  const { client } = fakeClient();
  const el = render(
    <RealtimeProvider client={client}>
      <ConnectionStatus />
    </RealtimeProvider>,
  );
  const badge = (): HTMLElement => el.querySelector('[role="status"]') ?? expect.unreachable();
  expect(badge().getAttribute("aria-live")).toBe("polite");
  await act(() => waitFor("connected", () => client.getStatus().state === "connected"));
  expect(badge().dataset.state).toBe("connected");
  expect(badge().textContent).toBe("Live");
  expect(badge().title).toBe("Live: changes appear instantly");
  expect(badge().getAttribute("aria-label")).toBe("Connection: Live. Live: changes appear instantly");
  expect(badge().querySelector("svg")).not.toBeNull();
  expect(badge().className).toContain("connection-status--ok");
  act(() => client.disconnect());
  expect(badge().dataset.state).toBe("disconnected");
});

test("<ConnectionStatus/> renders each state with its own look", () => {
  const states: RealtimeStatus[] = [
    { state: "connecting", attempt: 0, role: "solo" },
    { state: "reconnecting", attempt: 2, delayMs: 3000, retryAt: Date.now() + 3000, reason: "unavailable", message: "", role: "leader" },
    { state: "error", reason: "offline", message: "", retryAt: Date.now() + 5000, role: "follower" },
    { state: "error", reason: "unauthenticated", message: "", role: "solo" },
  ];
  const html = states.map((s) => {
    const stub = { getStatus: () => s, subscribe: () => () => {} };
    // Only getStatus/subscribe are used by the component.
    const client = stub as unknown as RealtimeClient;
    return renderToStaticMarkup(
      <RealtimeProvider client={client}>
        <ConnectionStatus />
      </RealtimeProvider>,
    );
  });
  expect(html[0]).toContain(">Connecting<");
  expect(html[1]).toMatch(/title="Reconnecting in 3 s, attempt 2: server unavailable"/);
  expect(html[1]).toContain("connection-status--warn");
  expect(html[2]).toMatch(/title="you are offline; retrying in 5 s \(shared from another tab\)"/);
  expect(html[2]).toContain('data-role="follower"');
  expect(html[3]).toContain(">Sign-in needed<");
});
