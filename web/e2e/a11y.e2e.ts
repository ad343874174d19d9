import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { RealtimeClient, devTokenProvider } from "@honeydo/realtime";
import { RealtimeService } from "@honeydo/realtime/gen/honeydo/realtime/v1/realtime_pb";
import { ShoppingService } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";
import { Notification_Level } from "@honeydo/realtime/gen/honeydo/system/v1/events_pb";
import { SERVICE_KEY, waitFor, type Realtimed } from "@honeydo/realtime-testing";
import { Demo, distDir, launchBrowser, launchServer, preflight, screenshot } from "./harness";

// Accessibility and keyboard use of the demo: axe-core on every screen
// (desktop and phone width, healthy and failing), and the keyboard flows of
// the list.

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let browser: Browser;
let srv: Realtimed | undefined;
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
    let n = 0;
    for (const c of contexts) for (const p of c.pages()) await screenshot(p, `a11y-failed-${++n}`).catch(() => {});
  }
  for (const c of contexts.splice(0)) await c.close();
  await srv?.dispose();
  srv = undefined;
});

type Viewport = "desktop" | "phone";

async function newContext(viewport: Viewport = "desktop"): Promise<BrowserContext> {
  const c = await browser.newContext({
    ...(viewport === "phone"
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1100, height: 760 } }),
    // Animations off, so that axe measures the colours at rest, not mid-fade.
    reducedMotion: "reduce",
  });
  contexts.push(c);
  return c;
}

interface AxeNode {
  target: string[];
  html: string;
  failureSummary?: string;
  any: { id: string; message: string }[];
}
interface AxeRule {
  id: string;
  impact: string | null;
  help: string;
  nodes: AxeNode[];
}
interface AxeResults {
  violations: AxeRule[];
  incomplete: AxeRule[];
  passes: AxeRule[];
}

/**
 * axe runs axe-core (injected from node_modules: no network) on the whole
 * page and fails on any serious or critical violation. On top of axe's
 * WCAG AA rules: every text needs 4.5:1, large text too (axe asks 3:1 of
 * it), and a colour contrast axe cannot decide fails as well.
 */
async function axe(page: Page, screen: string): Promise<void> {
  await screenshot(page, `a11y-${screen}`);
  const results = await page.evaluate(async (source: string): Promise<AxeResults> => {
    type AxeApi = {
      run(ctx: Document, options: unknown): Promise<AxeResults>;
      configure(spec: unknown): void;
      _audit: { checks: Record<string, { options: Record<string, unknown> }> };
    };
    const w = window as unknown as { axe?: AxeApi };
    if (w.axe === undefined) {
      const script = document.createElement("script");
      script.textContent = source;
      document.head.append(script);
      script.remove();
      const api = w.axe as AxeApi | undefined;
      if (api === undefined) throw new Error("axe-core did not load");
      const contrast = api._audit.checks["color-contrast"];
      if (contrast === undefined) throw new Error("axe-core has no color-contrast check");
      api.configure({
        checks: [
          {
            id: "color-contrast",
            options: { ...contrast.options, contrastRatio: { normal: { expected: 4.5 }, large: { expected: 4.5 } } },
          },
        ],
      });
    }
    const api = w.axe as AxeApi;
    return api.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
      resultTypes: ["violations", "incomplete"],
    });
  }, axeSource);
  const describe = (r: AxeRule): string =>
    `${r.id} (${r.impact}): ${r.help}\n` +
    r.nodes.map((n) => `    ${n.target.join(" ")}: ${n.failureSummary ?? n.any.map((a) => a.message).join("; ")}`).join("\n");
  const serious = results.violations.filter((r) => r.impact === "serious" || r.impact === "critical");
  const minor = results.violations.filter((r) => !serious.includes(r));
  if (minor.length > 0) console.info(`[axe ${screen}] minor:\n${minor.map(describe).join("\n")}`);
  // Text axe could not judge (e.g. one letter on a coloured avatar) is measured here instead.
  const undecided = results.incomplete.filter((r) => r.id === "color-contrast").flatMap((r) => r.nodes.map((n) => n.target.join(" ")));
  const lowContrast = (await Promise.all(undecided.map((target) => plainContrast(page, target)))).filter(
    (c) => !(c.ratio >= 4.5),
  );
  expect(
    [...serious.map(describe), ...lowContrast.map((c) => `contrast ${c.target}: ${c.ratio.toFixed(2)} (${c.why})`)],
    `axe on "${screen}": serious or critical violations, or text under 4.5:1`,
  ).toEqual([]);
}

/**
 * plainContrast measures the contrast of an element's text on a plain
 * background: its colour against the nearest opaque background colour
 * behind it. Anything fancier (an image or gradient, transparency) gives
 * NaN: undecided counts as a failure.
 */
async function plainContrast(page: Page, target: string): Promise<{ target: string; ratio: number; why: string }> {
  const { ratio, why } = await page.evaluate((selector) => {
    const el = document.querySelector(selector);
    if (el === null) return { ratio: Number.NaN, why: "not found" };
    const rgba = (css: string): number[] => (css.match(/[\d.]+/g) ?? []).map(Number);
    const lum = (c: number[]): number => {
      const [r = 0, g = 0, b = 0] = c.slice(0, 3).map((v) => {
        const x = v / 255;
        return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const fg = rgba(getComputedStyle(el).color);
    if ((fg[3] ?? 1) < 1) return { ratio: Number.NaN, why: "translucent text" };
    for (let node: Element | null = el; node !== null; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (Number(style.opacity) < 1) return { ratio: Number.NaN, why: "opacity" };
      if (style.backgroundImage !== "none") return { ratio: Number.NaN, why: "background image" };
      const bg = rgba(style.backgroundColor);
      const alpha = bg[3] ?? 1;
      if (alpha === 0) continue;
      if (alpha < 1) return { ratio: Number.NaN, why: "translucent background" };
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a) as [number, number];
      return { ratio: (hi + 0.05) / (lo + 0.05), why: `${getComputedStyle(el).color} on ${style.backgroundColor}` };
    }
    return { ratio: Number.NaN, why: "no background" };
  }, target);
  return { target, ratio, why };
}

/** focused describes the element that has the keyboard focus: its accessible label, or its tag. */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (el === null || el === document.body) return "(nothing)";
    return el.getAttribute("aria-label") ?? el.getAttribute("placeholder") ?? el.textContent ?? el.tagName;
  });
}

async function serverNames(server: Realtimed, user = "alice"): Promise<string[]> {
  const client = new RealtimeClient({
    baseUrl: server.baseUrl,
    getToken: devTokenProvider({ baseUrl: server.baseUrl, user, household: "home" }),
    crossTab: false,
  });
  return (await client.service(ShoppingService).listItems({})).items.map((i) => i.name);
}

async function notify(server: Realtimed, title: string, message: string): Promise<void> {
  const publisher = createClient(RealtimeService, createConnectTransport({ baseUrl: server.baseUrl, useBinaryFormat: true }));
  await publisher.publish(
    {
      target: { to: { case: "householdId", value: "home" } },
      event: { payload: { case: "notification", value: { id: title, level: Notification_Level.INFO, title, message } } },
    },
    { headers: { Authorization: `Bearer ${SERVICE_KEY}` } },
  );
}

test.each<Viewport>(["desktop", "phone"])("axe finds nothing serious on any screen (%s)", async (viewport) => {
  const server = (srv = await launchServer());
  const context = await newContext(viewport);
  const demo = await Demo.open(context, server.baseUrl);
  await demo.page.getByRole("heading", { name: "Who's shopping?" }).waitFor();
  await axe(demo.page, `${viewport}-picker`);

  await demo.signIn("Alice");
  await axe(demo.page, `${viewport}-empty-list`);

  for (const name of ["Oat milk", "Eggs", "Apples"]) {
    await demo.add(name);
    await demo.item(name).filter({ hasText: "added by you" }).waitFor();
  }
  await demo.toggle("Eggs");
  await demo.page.locator('[data-testid="item"][data-name="Eggs"][data-checked="true"]').waitFor();
  await notify(server, "Groceries delivered", "Your order is at the door.");
  await demo.page.getByTestId("toast").filter({ hasText: "Groceries delivered" }).waitFor();
  await axe(demo.page, `${viewport}-list`);

  await demo.page.getByRole("button", { name: "Rename Apples" }).click();
  await demo.page.getByRole("textbox", { name: "New name for Apples" }).waitFor();
  await axe(demo.page, `${viewport}-renaming`);
  await demo.page.keyboard.press("Escape");

  // The server goes away: the indicator says so, and a failed add explains itself.
  await server.stop();
  await demo.waitForState("reconnecting");
  await demo.add("Bread");
  await demo.page.getByTestId("toast").filter({ hasText: "Couldn't add" }).waitFor();
  await axe(demo.page, `${viewport}-server-down`);

  // The browser goes offline.
  await context.setOffline(true);
  await demo.waitForState("error");
  await axe(demo.page, `${viewport}-offline`);
  await context.setOffline(false);

  // Signing in while the server is down: the list cannot load.
  await server.start();
  const bob = await Demo.open(await newContext(viewport), server.baseUrl);
  await bob.page.getByRole("heading", { name: "Who's shopping?" }).waitFor();
  await server.stop();
  await bob.page.getByRole("button", { name: "Continue as Bob" }).click();
  await bob.page.locator(".list [role=alert]").waitFor();
  await axe(bob.page, `${viewport}-load-error`);
});

test("keyboard: focus stays on the row after tick, rename and remove; Escape and Cancel cancel; leaving the field saves nothing", async () => {
  const server = (srv = await launchServer());
  const demo = await Demo.open(await newContext(), server.baseUrl);
  const { page } = demo;
  await demo.signIn("Alice");
  const input = page.getByPlaceholder("Add an item");
  await input.focus();
  for (const name of ["Oat milk", "Eggs", "Apples"]) {
    await page.keyboard.type(name);
    await page.keyboard.press("Enter");
    await demo.item(name).filter({ hasText: "added by you" }).waitFor();
  }
  expect(await focused(page)).toMatch(/^Add an item/);
  expect(await input.inputValue()).toBe("");

  // Tick with Space: the row moves to "In the basket", the focus moves with it.
  await page.getByRole("checkbox", { name: "Eggs: in the basket" }).focus();
  await page.keyboard.press("Space");
  await page.locator('[data-testid="item"][data-name="Eggs"][data-checked="true"]').waitFor();
  expect(await focused(page)).toBe("Eggs: in the basket");
  // And back.
  await page.keyboard.press("Space");
  await page.locator('[data-testid="item"][data-name="Eggs"][data-checked="false"]').waitFor();
  expect(await focused(page)).toBe("Eggs: in the basket");

  // Rename with Enter: the field takes the focus; Enter saves; the focus returns to the row.
  await page.getByRole("button", { name: "Rename Apples" }).focus();
  await page.keyboard.press("Enter");
  expect(await focused(page)).toBe("New name for Apples");
  await page.keyboard.type("Green apples"); // the name is selected: typing replaces it
  await page.keyboard.press("Enter");
  await demo.item("Green apples").waitFor();
  await waitFor("renamed on the server", async () => (await serverNames(server)).includes("Green apples"));
  expect(await focused(page)).toBe("Rename Green apples");

  // Escape cancels.
  await page.keyboard.press("Enter");
  await page.keyboard.type("Pears");
  await page.keyboard.press("Escape");
  expect(await page.getByRole("textbox", { name: /^New name for/ }).count()).toBe(0);
  expect(await focused(page)).toBe("Rename Green apples");

  // Tab leaves the field for the row's buttons: nothing is saved, the field stays open.
  await page.keyboard.press("Enter");
  await page.keyboard.type("Pears");
  await page.keyboard.press("Tab");
  expect(await focused(page)).toBe("Save the new name of Green apples");
  await page.keyboard.press("Tab");
  expect(await focused(page)).toBe("Cancel renaming Green apples");
  await page.keyboard.press("Tab"); // out of the row altogether
  expect(await page.getByRole("textbox", { name: "New name for Green apples" }).inputValue()).toBe("Pears");
  expect(await serverNames(server)).not.toContain("Pears");
  // The Cancel button works from the keyboard.
  await page.getByRole("button", { name: "Cancel renaming Green apples" }).focus();
  await page.keyboard.press("Enter");
  expect(await page.getByRole("textbox", { name: /^New name for/ }).count()).toBe(0);
  expect(await focused(page)).toBe("Rename Green apples");
  expect(await demo.names()).toEqual(["Oat milk", "Eggs", "Green apples"]);
  expect(await serverNames(server)).toEqual(["Oat milk", "Eggs", "Green apples"]);

  // Bob removes the row Alice's focus is on: the focus goes to the row that takes its place.
  await page.getByRole("checkbox", { name: "Oat milk: in the basket" }).focus();
  const bob = new RealtimeClient({
    baseUrl: server.baseUrl,
    getToken: devTokenProvider({ baseUrl: server.baseUrl, user: "bob", household: "home" }),
    crossTab: false,
  }).service(ShoppingService);
  const oatMilk = (await bob.listItems({})).items.find((i) => i.name === "Oat milk") ?? expect.unreachable();
  await bob.removeItem({ itemId: oatMilk.id });
  await demo.item("Oat milk").waitFor({ state: "detached" });
  expect(await focused(page)).toBe("Eggs: in the basket");

  // Alice removes the last row: the focus goes to the one before, then to the add field.
  await page.getByRole("button", { name: "Remove Green apples" }).focus();
  await page.keyboard.press("Enter");
  await demo.item("Green apples").waitFor({ state: "detached" });
  expect(await focused(page)).toBe("Remove Eggs");
  await page.keyboard.press("Enter");
  await demo.item("Eggs").waitFor({ state: "detached" });
  expect(await focused(page)).toMatch(/^Add an item/);
  await waitFor("removed on the server", async () => (await serverNames(server)).length === 0);
  expect(demo.errors).toEqual([]);
});

test("errors: a failed add keeps the typed text and says why in words; a load error never shows an empty list", async () => {
  const server = (srv = await launchServer());
  const demo = await Demo.open(await newContext(), server.baseUrl);
  const { page } = demo;
  await demo.signIn("Alice");
  await server.stop();
  await demo.waitForState("reconnecting");
  await demo.add("Bread");
  const toast = page.getByTestId("toast").filter({ hasText: "Couldn't add" });
  await toast.waitFor();
  expect(await toast.textContent()).toContain("Couldn't reach HoneyDo");
  expect(await toast.textContent()).not.toMatch(/fetch|unavailable|\[/i);
  expect(await page.getByPlaceholder("Add an item").inputValue()).toBe("Bread");
  expect(await demo.names()).toEqual([]);

  // A person who signs in while the server is down sees why the list is missing, not "Nothing to buy yet".
  await server.start();
  const bob = await Demo.open(await newContext(), server.baseUrl);
  await bob.page.getByRole("heading", { name: "Who's shopping?" }).waitFor();
  await server.stop();
  await bob.page.getByRole("button", { name: "Continue as Bob" }).click();
  const alert = bob.page.locator(".list [role=alert]");
  await alert.waitFor();
  expect(await alert.textContent()).toContain("Couldn't reach HoneyDo — we'll retry");
  expect(await alert.textContent()).not.toMatch(/fetch|unavailable|\[/i);
  expect(await bob.page.locator(".list").textContent()).not.toContain("Nothing to buy yet");
  // And it does retry once the server is back.
  await server.start();
  await bob.page.locator('section.list[data-loaded="true"]').waitFor({ timeout: 20_000 });
  expect(await alert.count()).toBe(0);
  await bob.page.getByText("Nothing to buy yet").waitFor();
});

test("the build ships no source maps and realtimed serves it compressed and cached", async () => {
  const files = readdirSync(distDir, { recursive: true }).map(String);
  expect(files.filter((f) => f.endsWith(".map"))).toEqual([]);
  for (const f of files.filter((f) => f.endsWith(".js"))) {
    expect(readFileSync(join(distDir, f), "utf8"), f).not.toContain("sourceMappingURL");
  }
  const server = (srv = await launchServer());
  const demo = await Demo.open(await newContext(), server.baseUrl);
  const script = files.find((f) => /^assets[/\\]index-.*\.js$/.test(f)) ?? expect.unreachable();
  const res = await demo.page.request.get(`${server.baseUrl}/${script.replace(/\\/g, "/")}`, {
    headers: { "Accept-Encoding": "gzip" },
  });
  expect(res.headers()["content-encoding"]).toBe("gzip");
  expect(res.headers()["cache-control"]).toBe("public, max-age=31536000, immutable");
  const index = await demo.page.request.get(`${server.baseUrl}/`);
  expect(index.headers()["cache-control"]).toBe("no-cache");
  expect((await demo.page.request.get(`${server.baseUrl}/${script.replace(/\\/g, "/")}.map`)).status()).toBe(404);
});
