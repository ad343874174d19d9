import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, expect, onTestFinished, test } from "vitest";
import { RealtimeClient, devTokenProvider } from "@honeydo/realtime";
import { RealtimeService } from "@honeydo/realtime/gen/honeydo/realtime/v1/realtime_pb";
import { ShoppingService } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";
import { Notification_Level, ProbeSchema } from "@honeydo/realtime/gen/honeydo/system/v1/events_pb";
import { SERVICE_KEY, sleep, waitFor, type Realtimed } from "@honeydo/realtime-testing";
import { Demo, devCertificate, launchBrowser, launchServer, preflight, screenshot } from "./harness";

let browser: Browser;
let srv: Realtimed | undefined;
// How long a change may take to show in another page before the test fails:
// a bound for a busy machine, not a latency goal. The latencies are logged
// (console.info); speed is measured by benchmarks (docs/PERFORMANCE.md).
const LIVE = 15_000;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  preflight();
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") {
    // Keep what each page showed, for the CI artifacts.
    let n = 0;
    for (const c of contexts) for (const p of c.pages()) await screenshot(p, `failed-${ctx.task.name.slice(0, 1)}-${++n}`).catch(() => {});
  }
  for (const c of contexts.splice(0)) await c.close();
  await srv?.dispose();
  srv = undefined;
});

async function newContext(options: { phone?: boolean; selfSigned?: boolean } = {}): Promise<BrowserContext> {
  const c = await browser.newContext({
    ...(options.phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1100, height: 760 } }),
    // The test's own throwaway certificate, which no root vouches for.
    ignoreHTTPSErrors: options.selfSigned === true,
  });
  contexts.push(c);
  return c;
}

/** shoppingAs is a Node-side ShoppingService client for a dev user. */
function shoppingAs(server: Realtimed, user: string, household = "home") {
  return new RealtimeClient({
    baseUrl: server.baseUrl,
    getToken: devTokenProvider({ baseUrl: server.baseUrl, user, household }),
    crossTab: false,
  }).service(ShoppingService);
}

test("1. Alice and Bob see each other's changes live; Carol, in another household, sees none", async () => {
  const server = (srv = await launchServer());
  const carolContext = await newContext();
  // Carol's page records every item it ever shows.
  await carolContext.addInitScript(() => {
    const seen = new Set<string>();
    Object.assign(window, { __seenItems: seen });
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('[data-testid="item"]')) seen.add(el.getAttribute("data-name") ?? "");
    }).observe(document, { subtree: true, childList: true, attributes: true });
  });
  const picker = await Demo.open(await newContext(), server.baseUrl);
  await screenshot(picker.page, "01-user-picker");
  const alice = picker;
  const bob = await Demo.open(await newContext(), server.baseUrl);
  const carol = await Demo.open(carolContext, server.baseUrl);
  await Promise.all([alice.signIn("Alice"), bob.signIn("Bob"), carol.signIn("Carol")]);
  expect(await alice.page.getByTestId("signed-in-user").textContent()).toBe("Alice");

  // Alice adds → Bob sees it, no reload (the latency is logged, not asserted).
  let t0 = Date.now();
  await alice.add("Oat milk");
  await bob.item("Oat milk").waitFor({ timeout: LIVE });
  console.info(`Bob saw Alice's add after ${Date.now() - t0} ms`);
  await alice.item("Oat milk").waitFor();

  for (const name of ["Eggs", "Sourdough bread", "Apples"]) await alice.add(name);
  await waitFor("Bob has 4 items", async () => (await bob.names()).length === 4);

  // Bob checks it → Alice sees it checked.
  t0 = Date.now();
  await bob.toggle("Oat milk");
  await alice.page.locator('[data-testid="item"][data-name="Oat milk"][data-checked="true"]').waitFor({ timeout: LIVE });
  console.info(`seen after ${Date.now() - t0} ms`);

  // Alice renames → Bob sees the new name.
  await alice.rename("Apples", "Green apples");
  await bob.item("Green apples").waitFor({ timeout: LIVE });

  // Bob removes it → gone for Alice.
  t0 = Date.now();
  await bob.remove("Oat milk");
  await alice.item("Oat milk").waitFor({ state: "detached", timeout: LIVE });
  console.info(`seen after ${Date.now() - t0} ms`);
  expect(await alice.names()).toEqual(["Eggs", "Sourdough bread", "Green apples"]);
  expect(await bob.names()).toEqual(["Eggs", "Sourdough bread", "Green apples"]);

  // A system notification from a backend service shows as a toast in the household.
  const publisher = createClient(RealtimeService, createConnectTransport({ baseUrl: server.baseUrl, useBinaryFormat: true }));
  await publisher.publish(
    {
      target: { to: { case: "householdId", value: "home" } },
      event: {
        payload: {
          case: "notification",
          value: { id: "n1", level: Notification_Level.SUCCESS, title: "Groceries delivered", message: "Your order is at the door." },
        },
      },
    },
    { headers: { Authorization: `Bearer ${SERVICE_KEY}` } },
  );
  await alice.page.getByTestId("toast").filter({ hasText: "Groceries delivered" }).waitFor({ timeout: LIVE });
  await bob.page.getByTestId("toast").filter({ hasText: "Groceries delivered" }).waitFor({ timeout: LIVE });
  await screenshot(alice.page, "02-alice-list-with-toast");
  await screenshot(bob.page, "03-bob-list");

  // Carol never saw any of it.
  await carol.page.waitForTimeout(300);
  expect(await carol.names()).toEqual([]);
  expect(await carol.page.evaluate(() => [...((window as unknown as { __seenItems: Set<string> }).__seenItems)])).toEqual([]);
  expect(await carol.page.getByTestId("toast").count()).toBe(0);
  await screenshot(carol.page, "04-carol-other-household");

  // Same list on a phone-width screen.
  const phone = await Demo.open(await newContext({ phone: true }), server.baseUrl);
  await phone.signIn("Bob");
  await waitFor("phone list", async () => (await phone.names()).length === 3);
  await screenshot(phone.page, "05-phone");
});

test("2. the indicator follows the server: connected → reconnecting when it stops → connected and resynced when it is back", async () => {
  const server = (srv = await launchServer());
  const context = await newContext();
  const alice = await Demo.open(context, server.baseUrl);
  await alice.signIn("Alice");
  await alice.add("Coffee");
  await alice.item("Coffee").waitFor();
  expect(await alice.state()).toBe("connected");
  expect(await alice.status.getAttribute("aria-live")).toBe("polite");
  expect(await alice.status.getAttribute("title")).toMatch(/Live/);
  const resyncsBefore = await alice.resyncs();

  await server.stop();
  await alice.waitForState("reconnecting", LIVE);
  expect(await alice.status.getAttribute("title")).toMatch(/Reconnecting (in \d+ s|now), attempt \d+/);
  await screenshot(alice.page, "06-reconnecting");

  // While Alice's browser is offline the server comes back (with a new
  // history epoch) and Bob changes the list: only a resync can show it.
  await context.setOffline(true);
  await waitFor("offline state", async () => (await alice.state()) === "error" || (await alice.state()) === "reconnecting");
  await server.start();
  const bob = shoppingAs(server, "bob");
  const list = await bob.listItems({});
  const coffee = list.items.find((i) => i.name === "Coffee") ?? expect.unreachable();
  await bob.updateItem({ itemId: coffee.id, checked: true });
  await bob.addItem({ name: "Butter" });
  await context.setOffline(false);

  await alice.waitForState("connected", 10_000);
  await alice.item("Butter").waitFor({ timeout: LIVE });
  await alice.page.locator('[data-testid="item"][data-name="Coffee"][data-checked="true"]').waitFor({ timeout: LIVE });
  expect(await alice.resyncs()).toBeGreaterThan(resyncsBefore);
  expect(await alice.names()).toEqual(["Butter", "Coffee"]);
  await screenshot(alice.page, "07-reconnected-resynced");
});

test("3. eight tabs over HTTP/1.1 share one stream; every tab gets every event; unary calls work; the leader can close", async () => {
  const server = (srv = await launchServer());
  const context = await newContext();
  const first = await Demo.open(context, server.baseUrl);
  await first.signIn("Alice");
  const tabs = [first];
  for (let i = 1; i < 8; i++) tabs.push(await Demo.open(context, server.baseUrl));
  await Promise.all(tabs.map((t) => t.waitForState("connected")));
  // The demo is served over plain HTTP/1.1: 6 connections per origin for all tabs.
  const protocol = await first.page.evaluate(
    () => (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming).nextHopProtocol,
  );
  expect(protocol).toBe("http/1.1");
  const roles = await Promise.all(tabs.map((t) => t.role()));
  expect(roles.filter((r) => r === "leader")).toHaveLength(1);
  expect(roles.filter((r) => r === "follower")).toHaveLength(7);
  expect((await server.streams()).byUser.alice).toBe(1);

  // Bob's change reaches all eight.
  const bob = shoppingAs(server, "bob");
  await bob.addItem({ name: "From Bob" });
  await Promise.all(tabs.map((t) => t.item("From Bob").waitFor({ timeout: LIVE })));

  // Every tab makes a unary call (AddItem); every tab ends up with every item.
  for (const [i, t] of tabs.entries()) await t.add(`Tab ${i + 1}`);
  const expected = ["From Bob", ...tabs.map((_, i) => `Tab ${i + 1}`)];
  for (const t of tabs) {
    await waitFor("all items in every tab", async () => (await t.names()).length === expected.length, LIVE);
    expect((await t.names()).sort()).toEqual([...expected].sort());
  }
  const bobView = await bob.listItems({});
  expect(bobView.items.map((i) => i.name).sort()).toEqual([...expected].sort());
  expect((await server.streams()).byUser.alice).toBe(1);
  await screenshot(tabs[3]?.page ?? first.page, "08-eight-tabs-follower");

  // Close the leader's tab: another takes over and events keep coming.
  const leaderIndex = roles.indexOf("leader");
  const leader = tabs[leaderIndex] ?? expect.unreachable();
  await leader.page.close();
  const rest = tabs.filter((_, i) => i !== leaderIndex);
  await waitFor(
    "a new leader",
    async () => (await Promise.all(rest.map((t) => t.role()))).filter((r) => r === "leader").length === 1,
    5000,
  );
  await Promise.all(rest.map((t) => t.waitForState("connected")));
  await bob.addItem({ name: "After takeover" });
  await Promise.all(rest.map((t) => t.item("After takeover").waitFor({ timeout: LIVE })));
  await waitFor("one stream again", async () => (await server.streams()).byUser.alice === 1, LIVE);
});

test("4. signing out closes the stream on the server at once", async () => {
  const server = (srv = await launchServer());
  const alice = await Demo.open(await newContext(), server.baseUrl);
  await alice.signIn("Alice");
  await waitFor("stream open", async () => (await server.streams()).byUser.alice === 1);
  const t0 = Date.now();
  await alice.page.getByRole("button", { name: "Sign out" }).click();
  await waitFor("stream closed", async () => !(await server.streams()).byUser.alice, LIVE, 10);
  console.info(`seen after ${Date.now() - t0} ms`);
  await alice.page.getByRole("button", { name: "Continue as Alice" }).waitFor();
  // And it stays closed.
  await alice.page.waitForTimeout(500);
  expect((await server.streams()).open).toBe(0);
});

test("5. Bob is offline for 10 s while Alice adds items: back online, every item appears once, without a reload", async () => {
  const server = (srv = await launchServer());
  const bobContext = await newContext();
  // Bob's page notes any moment an item is shown twice.
  await bobContext.addInitScript(() => {
    const doubled: string[] = [];
    Object.assign(window, { __doubled: doubled });
    new MutationObserver(() => {
      const names = [...document.querySelectorAll('[data-testid="item"]')].map((el) => el.getAttribute("data-name"));
      for (const [i, n] of names.entries()) if (names.indexOf(n) !== i) doubled.push(n ?? "");
    }).observe(document, { subtree: true, childList: true, attributes: true });
  });
  const alice = await Demo.open(await newContext(), server.baseUrl);
  const bob = await Demo.open(bobContext, server.baseUrl);
  await Promise.all([alice.signIn("Alice"), bob.signIn("Bob")]);
  await alice.add("Before");
  await bob.item("Before").waitFor({ timeout: LIVE });
  let navigations = 0;
  bob.page.on("framenavigated", (frame) => {
    if (frame === bob.page.mainFrame()) navigations++;
  });
  await bob.page.evaluate(() => Object.assign(window, { __sameDocument: "yes" })); // gone if the page reloads
  const resyncsBefore = await bob.resyncs();

  const offlineAt = Date.now();
  await bobContext.setOffline(true);
  await bob.waitForState("error", LIVE);
  expect(await bob.status.textContent()).toBe("Connection: Offline");
  const names = ["Oat milk", "Eggs", "Sourdough bread", "Apples", "Coffee", "Butter"];
  for (const [i, name] of names.entries()) {
    await alice.add(name);
    await alice.item(name).filter({ hasText: "added by you" }).waitFor(); // the server has it
    // Load-test probes go to the household too; the demo must ignore them.
    await publishProbe(server, "home", i);
    await alice.page.waitForTimeout(1200);
  }
  await sleep(offlineAt + 10_000 - Date.now());
  // Ten seconds later Bob's page has seen none of it: the network really was cut.
  expect(await bob.names()).toEqual(["Before"]);
  expect(await bob.state()).toBe("error");
  await screenshot(bob.page, "09-bob-offline");

  const onlineAt = Date.now();
  await bobContext.setOffline(false);
  await bob.waitForState("connected", LIVE);
  await waitFor("every item at Bob's", async () => (await bob.names()).length === names.length + 1, LIVE);
  const catchUp = Date.now() - onlineAt;
  expect((await bob.names()).sort()).toEqual(["Before", ...names].sort());
  expect(await alice.names()).toEqual(await bob.names());
  // Replayed from the cursor (the resume succeeded), not refetched; no item doubled; no reload.
  expect(await bob.resyncs()).toBe(resyncsBefore);
  expect(await bob.page.evaluate(() => (window as unknown as { __doubled: string[] }).__doubled)).toEqual([]);
  expect(await bob.page.evaluate(() => (window as unknown as { __sameDocument?: string }).__sameDocument)).toBe("yes");
  expect(navigations).toBe(0);
  // Nothing failed in either page (the browser's own "net::ERR_INTERNET_DISCONNECTED" lines aside).
  for (const page of [alice, bob]) expect(page.errors.filter((e) => !e.includes("net::ERR_INTERNET_DISCONNECTED"))).toEqual([]);
  await screenshot(bob.page, "10-bob-back-online");
  console.info(`bob caught up ${catchUp} ms after coming back online`);
});

test("6. Alice on two browsers, two tabs each: an add in any tab shows in the other three, exactly once, without reload", async () => {
  const server = (srv = await launchServer());
  // Two browser contexts are two devices: separate storage, separate
  // cross-tab election, and each tab mints its own dev token, so each
  // device has its own session id. Every page notes any moment an item is
  // shown twice.
  const devices = [await newContext(), await newContext()];
  for (const c of devices) {
    await c.addInitScript(() => {
      const doubled: string[] = [];
      Object.assign(window, { __doubled: doubled, __sameDocument: "yes" });
      new MutationObserver(() => {
        const names = [...document.querySelectorAll('[data-testid="item"]')].map((el) => el.getAttribute("data-name"));
        for (const [i, n] of names.entries()) if (names.indexOf(n) !== i) doubled.push(n ?? "");
      }).observe(document, { subtree: true, childList: true, attributes: true });
    });
  }
  const [laptop, phone] = devices as [BrowserContext, BrowserContext];
  const laptop1 = await Demo.open(laptop, server.baseUrl);
  const phone1 = await Demo.open(phone, server.baseUrl);
  await Promise.all([laptop1.signIn("Alice"), phone1.signIn("Alice")]);
  // The second tab of each device is signed in already (the choice is kept per browser).
  const laptop2 = await Demo.open(laptop, server.baseUrl);
  const phone2 = await Demo.open(phone, server.baseUrl);
  const tabs = [laptop1, laptop2, phone1, phone2];
  await Promise.all(tabs.map((t) => t.waitForState("connected")));
  await Promise.all(tabs.map((t) => t.page.locator('section.list[data-loaded="true"]').waitFor()));
  // One stream per device (a leader and a follower in each).
  await waitFor("one stream per device", async () => (await server.streams()).byUser.alice === 2);
  for (const pair of [[laptop1, laptop2], [phone1, phone2]]) {
    expect((await Promise.all(pair.map((t) => t.role()))).sort()).toEqual(["follower", "leader"]);
  }
  let navigations = 0;
  for (const t of tabs) {
    t.page.on("framenavigated", (frame) => {
      if (frame === t.page.mainFrame()) navigations++;
    });
  }

  // One add from each tab: leaders and followers, on both devices.
  const added: string[] = [];
  for (const [i, actor] of tabs.entries()) {
    const name = `Item from tab ${i + 1}`;
    const t0 = Date.now();
    await actor.add(name);
    added.push(name);
    await Promise.all(tabs.map((t) => t.item(name).waitFor({ timeout: LIVE })));
    console.info(`${name}: in all four tabs after ${Date.now() - t0} ms`);
  }
  await sleep(500); // time for a late duplicate to show
  for (const t of tabs) {
    expect(await t.names()).toEqual(expect.arrayContaining(added));
    expect(await t.names()).toHaveLength(added.length);
    for (const name of added) expect(await t.item(name).count()).toBe(1);
    expect(await t.page.evaluate(() => (window as unknown as { __doubled: string[] }).__doubled)).toEqual([]);
    expect(await t.page.evaluate(() => (window as unknown as { __sameDocument?: string }).__sameDocument)).toBe("yes");
    expect(t.errors).toEqual([]);
  }
  expect(navigations).toBe(0);
  await screenshot(phone2.page, "11-alice-phone-second-tab");
});

/** publishProbe publishes a load-test probe to a household, as `realtimectl bench` does. */
async function publishProbe(server: Realtimed, household: string, seq: number): Promise<void> {
  const publisher = createClient(RealtimeService, createConnectTransport({ baseUrl: server.baseUrl, useBinaryFormat: true }));
  await publisher.publish(
    {
      target: { to: { case: "householdId", value: household } },
      event: {
        payload: {
          case: "probe",
          value: create(ProbeSchema, { seq: BigInt(seq), sendTimeUnixMicros: BigInt(Date.now()) * 1000n, target: `household:${household}` }),
        },
      },
    },
    { headers: { Authorization: `Bearer ${SERVICE_KEY}` } },
  );
}

test("7. straight to realtimed over HTTPS, as a browser without a proxy: HTTP/2, Alice's change reaches Bob live, signing out ends Bob's stream at once", async () => {
  const tls = devCertificate();
  onTestFinished(() => rmSync(dirname(tls.cert), { recursive: true, force: true }));
  // Info logs: the server's line for each closed stream says how it ran.
  const server = (srv = await launchServer({ tls, args: ["--log-level", "info"] }));
  const alice = await Demo.open(await newContext({ selfSigned: true }), server.baseUrl);
  const bob = await Demo.open(await newContext({ selfSigned: true }), server.baseUrl);
  await Promise.all([alice.signIn("Alice"), bob.signIn("Bob")]);
  await waitFor("both streams open", async () => {
    const { byUser } = await server.streams();
    return byUser.alice === 1 && byUser.bob === 1;
  }, LIVE);
  const t0 = Date.now();
  await alice.add("Over HTTP/2");
  await bob.item("Over HTTP/2").waitFor({ timeout: LIVE });
  console.info(`seen after ${Date.now() - t0} ms`);
  // The page's calls (the stream's fetch never completes, its unary calls
  // do) went over HTTP/2, which shares the stream's connection.
  const protocols = await alice.page.evaluate(() =>
    performance
      .getEntriesByType("resource")
      .filter((e) => e.name.includes("/honeydo."))
      .map((e) => (e as PerformanceResourceTiming).nextHopProtocol),
  );
  expect(protocols.length).toBeGreaterThan(0);
  expect(new Set(protocols)).toEqual(new Set(["h2"]));

  await bob.page.getByRole("button", { name: "Sign out" }).click();
  await waitFor("Bob's stream closed", async () => !(await server.streams()).byUser.bob, LIVE, 10);
  // It ran as a direct stream, whose end the browser's reset told it.
  await waitFor("Bob's stream's closing log line", () => /stream closed.* user=bob .*direct=true/.test(server.logs()), LIVE);
  expect((await server.streams()).byUser.alice).toBe(1);
  expect([...alice.errors, ...bob.errors]).toEqual([]);
});
