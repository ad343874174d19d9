// @vitest-environment happy-dom
// @vitest-environment-options {"url": "http://localhost:5173"}
//
// The React bindings against a real `realtimed --dev` (one per file). The
// "page" runs at the Vite dev server's origin, which a --dev server allows
// by CORS out of the box, and happy-dom's fetch applies the same-origin
// policy like a browser: the calls below are the ones `npm run dev` makes.
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { StrictMode, useState, type ReactNode } from "react";
import { createRoot, type Root } from "react-dom/client";
import { renderToStaticMarkup } from "react-dom/server";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { RealtimeService, type Event } from "@honeydo/realtime/gen/honeydo/realtime/v1/realtime_pb";
import { ShoppingService } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";
import { ProbeSchema } from "@honeydo/realtime/gen/honeydo/system/v1/events_pb";
import {
  devTokenProvider,
  RealtimeClient,
  type RealtimeClientOptions,
  type RealtimeStatus,
  type ResyncReason,
} from "@honeydo/realtime";
import { FakeEnvironment, FlakyNetwork, MemoryLocks, Realtimed, SERVICE_KEY, waitFor } from "@honeydo/realtime-testing";
import {
  ConnectionStatus,
  RealtimeProvider,
  useConnectionStatus,
  useRealtimeClient,
  useRealtimeEvent,
  useRealtimeResync,
  useRealtimeService,
  useRealtimeStatus,
} from "./index.js";

// No act(): what changes the UI here is a real server at its own pace, so
// React renders on its own schedule, as in a browser, and the tests poll
// the DOM (React's act environment stays off).

let srv: Realtimed;
beforeAll(async () => {
  srv = await Realtimed.launch();
});
afterAll(async () => {
  await srv?.dispose();
});

let root: Root | undefined;
let container: HTMLElement | undefined;
const clients: RealtimeClient[] = [];
/** handlerErrors collects what the clients' onError saw: every test expects none. */
let handlerErrors: unknown[] = [];
afterEach(() => {
  root?.unmount();
  container?.remove();
  root = undefined;
  for (const c of clients.splice(0)) c.disconnect();
  expect(handlerErrors).toEqual([]);
  handlerErrors = [];
});

function render(node: ReactNode): HTMLElement {
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  root.render(node);
  return container;
}

/**
 * people returns fresh names for one test: its own household and users, so
 * tests sharing the server never see each other's events or streams.
 */
let seq = 0;
function people(): { home: string; alice: string; bob: string } {
  const n = `${Date.now().toString(36)}${++seq}`;
  return { home: `home-${n}`, alice: `alice-${n}`, bob: `bob-${n}` };
}

function clientFor(user: string, household: string, extra: Partial<RealtimeClientOptions> = {}): RealtimeClient {
  const c = new RealtimeClient({
    baseUrl: srv.baseUrl,
    getToken: devTokenProvider({ baseUrl: srv.baseUrl, user, household }),
    crossTab: false,
    stopDelayMs: 10,
    onError: (err) => handlerErrors.push(err),
    ...extra,
  });
  clients.push(c);
  return c;
}

/** shoppingAs is another person's ShoppingService client: their changes reach the household. */
function shoppingAs(user: string, household: string) {
  return clientFor(user, household).service(ShoppingService);
}

/** publish sends an event to a household as a backend service would (Publish with a service key). */
async function publish(household: string, payload: Event["payload"]): Promise<void> {
  const rpc = createClient(RealtimeService, createConnectTransport({ baseUrl: srv.baseUrl, useBinaryFormat: true }));
  await rpc.publish(
    { target: { to: { case: "householdId", value: household } }, event: { payload } },
    { headers: { Authorization: `Bearer ${SERVICE_KEY}` } },
  );
}

const probe = (n: number): Event["payload"] => ({
  case: "probe",
  value: create(ProbeSchema, { seq: BigInt(n), sendTimeUnixMicros: BigInt(Date.now()) * 1000n, target: "test" }),
});

const until = <T,>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> =>
  waitFor(what, fn, 10_000);

/** connected waits for the client, then for React to show it. */
async function connected(c: RealtimeClient, badge?: () => HTMLElement): Promise<void> {
  await until(`${c.getStatus().state} → connected`, () => c.getStatus().state === "connected");
  if (badge) await until("the badge shows it", () => badge().dataset.state === "connected");
}

function badgeOf(el: HTMLElement): () => HTMLElement {
  return () => el.querySelector('[role="status"]') ?? expect.unreachable();
}

test("a hook outside <RealtimeProvider> throws an error that says so", () => {
  function Orphan(): ReactNode {
    useRealtimeStatus();
    return null;
  }
  expect(() => renderToStaticMarkup(<Orphan />)).toThrow(/no <RealtimeProvider> above this component/);
});

test("useRealtimeEvent calls the latest handler without resubscribing, ignores other cases, unsubscribes on unmount", async () => {
  const { home, alice, bob } = people();
  let subscribes = 0;
  const client = clientFor(alice, home, {
    // Counts the Subscribe requests the browser sends; passes everything through.
    fetch: (input, init) => {
      if (String(input instanceof Request ? input.url : input).endsWith("/Subscribe")) subscribes++;
      return globalThis.fetch(input, init);
    },
    stopDelayMs: 400,
  });
  const calls: string[] = [];
  let setLabel: (s: string) => void = () => {};
  function Listener(): ReactNode {
    const [label, set] = useState("first");
    setLabel = set;
    useRealtimeEvent("itemAdded", (p, e) => calls.push(`${label}:${p.item?.name}:${e.senderUserId}`));
    return <span data-testid="label">{label}</span>;
  }
  function App({ show }: { show: boolean }): ReactNode {
    return <RealtimeProvider client={client}>{show ? <Listener /> : null}</RealtimeProvider>;
  }
  const el = render(
    <StrictMode>
      <App show />
    </StrictMode>,
  );
  await connected(client);
  const shopping = shoppingAs(bob, home);

  await shopping.addItem({ name: "Milk" });
  await until("1 call", () => calls.length === 1);
  setLabel("second");
  await until("rendered again", () => el.textContent === "second");
  // A load-test probe to the household first: no itemAdded handler runs and nothing fails.
  await publish(home, probe(1));
  await shopping.addItem({ name: "Eggs" });
  await until("2 calls", () => calls.length === 2);
  expect(calls).toEqual([`first:Milk:${bob}`, `second:Eggs:${bob}`]);
  expect(subscribes).toBe(1); // StrictMode's double effects did not reopen the stream

  root?.render(
    <StrictMode>
      <App show={false} />
    </StrictMode>,
  );
  await until("unmounted", () => el.textContent === "");
  // The stream stays open for stopDelayMs: an event that reaches the client
  // now (its cursor moves) must not reach the unmounted component.
  const before = client.resumeCursor;
  await shopping.addItem({ name: "Bread" });
  await until("Bread reached the client", () => client.resumeCursor !== before);
  expect(client.getStatus().state).toBe("connected");
  expect(calls).toHaveLength(2);
  await until("idle", () => client.getStatus().state === "idle");
  await waitFor("stream closed after the last listener", async () => !(await srv.streams()).byUser[alice]);
});

test("useRealtimeStatus and useRealtimeResync follow the client; useRealtimeService is stable", async () => {
  const { home, alice } = people();
  const client = clientFor(alice, home);
  const seen: RealtimeStatus["state"][] = [];
  const resyncs: ResyncReason[] = [];
  const services = new Set<unknown>();
  function Probe(): ReactNode {
    const status = useRealtimeStatus();
    seen.push(status.state);
    useRealtimeResync((r) => resyncs.push(r));
    services.add(useRealtimeService(ShoppingService));
    const same = useRealtimeClient() === client;
    const who = status.state === "connected" ? `${status.userId}@${status.householdId}` : "";
    return <span>{`${status.state}:${String(same)}:${who}`}</span>;
  }
  const el = render(
    <RealtimeProvider client={client}>
      <Probe />
    </RealtimeProvider>,
  );
  await connected(client);
  await until("rendered", () => el.textContent === `connected:true:${alice}@${home}`);
  expect(seen[0]).toBe("idle");
  expect(seen).toContain("connected");
  expect(resyncs).toEqual(["initial"]);
  expect(services.size).toBe(1);
  // The service client from the hook talks to the server with the user's token.
  const [service] = [...services];
  expect(service).toBe(client.service(ShoppingService));
  await client.service(ShoppingService).addItem({ name: "Rice" });
  expect((await client.service(ShoppingService).listItems({})).items.map((i) => i.name)).toEqual(["Rice"]);
  client.disconnect();
  await until("disconnected", () => el.textContent === "disconnected:true:");
  await until("stream closed", async () => !(await srv.streams()).byUser[alice]);
});

test("<ConnectionStatus/> is an accessible live region with a label, unstyled (no icon unless given); no details while Live", async () => {
  const { home, alice } = people();
  const client = clientFor(alice, home);
  const el = render(
    <RealtimeProvider client={client}>
      <ConnectionStatus />
    </RealtimeProvider>,
  );
  const badge = badgeOf(el);
  await until("rendered", () => el.querySelector('[role="status"]') !== null);
  expect(badge().getAttribute("aria-live")).toBe("polite");
  await connected(client, badge);
  expect(badge().dataset.role).toBe("solo");
  // The live region's text is the label alone: a screen reader hears
  // "Connection: Live", never a countdown.
  expect(badge().textContent).toBe("Connection: Live");
  expect(badge().getAttribute("aria-atomic")).toBe("true");
  expect(badge().hasAttribute("aria-label")).toBe(false);
  expect(badge().title).toBe("Live: changes appear instantly");
  expect(badge().querySelector("svg")).toBeNull();
  expect(badge().querySelector(".connection-status__icon-slot")).toBeNull();
  expect(badge().className).toContain("connection-status--ok");
  expect(el.querySelector(".connection-status__details")).toBeNull();
  client.disconnect();
  await until("disconnected", () => badge().dataset.state === "disconnected");
  expect(badge().textContent).toBe("Connection: Offline");
  expect(badge().className).toContain("connection-status--off");
});

test("<ConnectionStatus/> shows Connecting until the welcome, then Live", async () => {
  const { home, alice } = people();
  const tokens = devTokenProvider({ baseUrl: srv.baseUrl, user: alice, household: home });
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  // The app's token provider is slow (say, a sign-in still loading).
  const client = clientFor(alice, home, {
    getToken: async (req) => {
      await gate;
      return tokens(req);
    },
  });
  const el = render(
    <RealtimeProvider client={client}>
      <ConnectionStatus />
    </RealtimeProvider>,
  );
  const badge = badgeOf(el);
  await until("connecting", () => el.querySelector('[role="status"][data-state="connecting"]') !== null);
  expect(badge().textContent).toBe("Connection: Connecting");
  expect(badge().title).toBe("Connecting");
  expect(badge().className).toContain("connection-status--busy");
  release();
  await connected(client, badge);
  expect(badge().textContent).toBe("Connection: Live");
});

test("<ConnectionStatus/> counts down to the retry on the page while the server is down; Retry now reconnects when it is back", async () => {
  const own = await Realtimed.launch();
  try {
    const { home, alice } = people();
    const client = new RealtimeClient({
      baseUrl: own.baseUrl,
      getToken: devTokenProvider({ baseUrl: own.baseUrl, user: alice, household: home }),
      crossTab: false,
      initialDelayMs: 3000,
      maxDelayMs: 3000,
      random: () => 0.999,
      quietReconnectMs: 0, // show the retry at once, to see its whole countdown
      onError: (err) => handlerErrors.push(err),
    });
    clients.push(client);
    const el = render(
      <RealtimeProvider client={client}>
        <ConnectionStatus />
      </RealtimeProvider>,
    );
    const badge = badgeOf(el);
    await connected(client, badge);
    // Every tooltip the badge ever shows: a countdown must never start above the real delay.
    const titles: string[] = [];
    new MutationObserver(() => titles.push(badge().title)).observe(el, { subtree: true, attributes: true });
    await own.stop(); // SIGTERM: the server ends the stream with UNAVAILABLE
    await until("reconnecting", () => badge().dataset.state === "reconnecting");
    expect(badge().textContent).toBe("Connection: Reconnecting");
    expect(badge().className).toContain("connection-status--warn");
    expect(badge().title).toBe("Reconnecting in 3 s, attempt 1: server unavailable");
    // The tooltip ticks while the retry is pending.
    await until("countdown", () => badge().title === "Reconnecting in 2 s, attempt 1: server unavailable");
    const seconds = titles.flatMap((t) => /^Reconnecting in (\d+) s/.exec(t)?.[1] ?? []).map(Number);
    expect(Math.max(...seconds)).toBe(3);
    // The details are on the page, not only in the tooltip, and they tick too.
    const details = (): string => el.querySelector(".connection-status__detail")?.textContent ?? "";
    await until("details on the page", () => /^Reconnecting in \d s, attempt \d+: server unavailable$/.test(details()));
    expect(badge().getAttribute("aria-describedby")).toBe(el.querySelector(".connection-status__details")?.id);
    await own.start();
    // "Retry now" is a button (keyboard and touch): it retries at once, not when the timer says.
    const retry = [...el.querySelectorAll("button")].find((b) => b.textContent === "Retry now");
    expect(retry).toBeDefined();
    expect([...el.querySelectorAll("button")].some((b) => b.textContent === "Sign in again")).toBe(false);
    await until("retry ready", () => client.getStatus().state === "reconnecting");
    retry?.click();
    await connected(client, badge);
    expect(el.querySelector(".connection-status__details")).toBeNull();
  } finally {
    await own.dispose();
  }
});

test("<ConnectionStatus/> in a follower tab shows the leader tab's offline error, marked as shared", async () => {
  const { home, alice } = people();
  // Two tabs of one browser: the Web Locks API is MemoryLocks here, the
  // BroadcastChannel is Node's; the leader's network can be unplugged.
  const locks = new MemoryLocks();
  const leaderEnv = new FakeEnvironment();
  const net = new FlakyNetwork();
  const crossTab = { key: `${alice}@${home}`, locks };
  const leader = clientFor(alice, home, {
    crossTab,
    environment: leaderEnv,
    fetch: net.fetch,
    initialDelayMs: 5000,
    maxDelayMs: 5000,
    random: () => 0.999,
  });
  leader.onStatusChange(() => {});
  await connected(leader);
  expect(leader.getStatus().role).toBe("leader");
  const follower = clientFor(alice, home, { crossTab, environment: new FakeEnvironment() });
  const badge = badgeOf(
    render(
      <RealtimeProvider client={follower}>
        <ConnectionStatus />
      </RealtimeProvider>,
    ),
  );
  await connected(follower, badge);
  expect(badge().dataset.role).toBe("follower");
  expect(badge().title).toBe("Live: changes appear instantly (shared from another tab)");
  expect((await srv.streams()).byUser[alice]).toBe(1);

  leaderEnv.online = false;
  net.cut();
  leaderEnv.fire("offline");
  await until("offline", () => badge().dataset.state === "error");
  expect(badge().textContent).toBe("Connection: Offline");
  expect(badge().className).toContain("connection-status--bad");
  expect(badge().title).toBe("you are offline; retrying in 5 s (shared from another tab)");

  leaderEnv.online = true;
  net.restore();
  leaderEnv.fire("online");
  await connected(follower, badge);
  expect(badge().textContent).toBe("Connection: Live");
});

test("<ConnectionStatus/> offers Sign in again when the server rejects the token twice", async () => {
  const { home, alice } = people();
  let asked = 0;
  let signIns = 0;
  const client = clientFor(alice, home, {
    getToken: () => {
      asked++;
      return "not-a-token";
    },
  });
  const el = render(
    <RealtimeProvider client={client}>
      <ConnectionStatus onSignInAgain={() => signIns++} />
    </RealtimeProvider>,
  );
  const badge = badgeOf(el);
  await until("error", () => badge().dataset.state === "error");
  expect(badge().textContent).toBe("Connection: Signed out");
  expect(badge().className).toContain("connection-status--bad");
  expect(badge().title).toBe("sign-in expired or rejected");
  expect(el.querySelector(".connection-status__detail")?.textContent).toBe("sign-in expired or rejected");
  expect(asked).toBe(2); // once, then once more with forceRefresh; then it stops
  const signIn = [...el.querySelectorAll("button")].find((b) => b.textContent === "Sign in again");
  expect(signIn?.type).toBe("button");
  signIn?.click();
  expect(signIns).toBe(1);
});

test("useConnectionStatus is headless: label, tone, detail and retry for any markup, in the labels given", async () => {
  const { home, alice } = people();
  const client = clientFor(alice, home);
  const views: string[] = [];
  function Dot(): ReactNode {
    const v = useConnectionStatus({
      labels: { live: "Verbunden", connecting: "Verbinde…", offline: "Getrennt" },
      describe: (s) => `Zustand ${s.state}`,
    });
    views.push(`${v.kind}/${v.tone}/${v.label}`);
    return (
      <i data-testid="dot" data-kind={v.kind} title={v.detail} data-busy={String(v.busy)} data-trouble={String(v.trouble)}>
        {v.label}
      </i>
    );
  }
  const el = render(
    <RealtimeProvider client={client}>
      <Dot />
    </RealtimeProvider>,
  );
  const dot = (): HTMLElement => el.querySelector('[data-testid="dot"]') ?? expect.unreachable();
  await connected(client);
  await until("live", () => dot().dataset.kind === "live");
  expect(dot().textContent).toBe("Verbunden");
  expect(dot().title).toBe("Zustand connected");
  expect(dot().dataset.busy).toBe("false");
  expect(dot().dataset.trouble).toBe("false");
  expect(views).toContain("connecting/busy/Verbinde…");
  client.disconnect();
  await until("offline", () => dot().dataset.kind === "offline");
  // A label not given stays English; "offline" was given.
  expect(dot().textContent).toBe("Getrennt");
});

test("<ConnectionStatus> takes translated labels and button texts, an icon slot, and a render prop", async () => {
  const { home, alice } = people();
  let signIns = 0;
  const rejected = clientFor(alice, home, { getToken: () => "not-a-token" });
  const el = render(
    <RealtimeProvider client={rejected}>
      <ConnectionStatus
        labels={{ prefix: "Verbindung: ", signedOut: "Abgemeldet", retryNow: "Jetzt erneut", signInAgain: "Neu anmelden" }}
        icon={(v) => <svg data-tone={v.tone} />}
        onSignInAgain={() => signIns++}
      />
    </RealtimeProvider>,
  );
  const badge = badgeOf(el);
  await until("error", () => badge().dataset.state === "error");
  expect(badge().textContent).toBe("Verbindung: Abgemeldet");
  // The icon is decorative: inside the badge, hidden from screen readers.
  const slot = badge().querySelector(".connection-status__icon-slot");
  expect(slot?.getAttribute("aria-hidden")).toBe("true");
  expect(slot?.querySelector("svg")?.dataset.tone).toBe("bad");
  const buttons = [...el.querySelectorAll("button")].map((b) => b.textContent);
  expect(buttons).toEqual(["Jetzt erneut", "Neu anmelden"]);
  el.querySelectorAll("button")[1]?.click();
  expect(signIns).toBe(1);
  root?.unmount();
  container?.remove();

  // The render prop replaces the default markup and gets the same view.
  const { home: home2, alice: alice2 } = people();
  const client = clientFor(alice2, home2);
  const el2 = render(
    <RealtimeProvider client={client}>
      <ConnectionStatus labels={{ live: "En ligne" }}>
        {(v) => (
          <output data-kind={v.kind} title={v.detail}>
            {v.label}
          </output>
        )}
      </ConnectionStatus>
    </RealtimeProvider>,
  );
  const out = (): HTMLOutputElement => el2.querySelector("output") ?? expect.unreachable();
  await connected(client);
  await until("live", () => out().dataset.kind === "live");
  expect(out().textContent).toBe("En ligne");
  expect(out().title).toBe("Live: changes appear instantly");
  expect(el2.querySelector('[role="status"]')).toBeNull();
});
