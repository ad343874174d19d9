import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from "playwright-core";
import { Realtimed, realtimedBinary } from "@honeydo/realtime-testing";

const webDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const distDir = join(webDir, "dist");
export const resultsDir = join(webDir, "test-results");

/** CHROMIUM is $CHROMIUM_BIN or Debian's /usr/bin/chromium. */
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

/** DEVCERT is scripts/devcert built: $DEVCERT_BIN or bin/devcert. */
export const DEVCERT = process.env.DEVCERT_BIN ?? resolve(webDir, "../bin/devcert");

/**
 * preflight fails with a clear message when something the browser tests
 * need is missing: they are never skipped.
 */
export function preflight(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}. Install it with \`apt-get install chromium\` ` +
        `(Debian; as root), or set CHROMIUM_BIN to a Chromium binary.`,
    );
  }
  const built = join(distDir, "index.html");
  if (!existsSync(built)) {
    throw new Error(`The demo is not built (${built} is missing): run \`npm run build\` first.`);
  }
  const newer = newestSource();
  if (newer !== undefined && newer.mtimeMs > statSync(built).mtimeMs) {
    throw new Error(`The demo build is older than ${newer.path}: run \`npm run build\` first.`);
  }
  realtimedBinary(); // throws with a build hint when missing
  if (!existsSync(DEVCERT)) {
    throw new Error(
      `devcert not found at ${DEVCERT}: build it with \`cd .. && go build -o bin/devcert ./scripts/devcert\` ` +
        `(make test-web does) or set DEVCERT_BIN to its absolute path`,
    );
  }
  mkdirSync(resultsDir, { recursive: true });
}

/** newestSource is the most recently changed file the demo is built from (tests aside). */
function newestSource(): { path: string; mtimeMs: number } | undefined {
  let newest: { path: string; mtimeMs: number } | undefined;
  const consider = (path: string): void => {
    const { mtimeMs } = statSync(path);
    if (newest === undefined || mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
  };
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== "testing") walk(path);
      } else if (!/\.test\.tsx?$/.test(e.name)) {
        consider(path);
      }
    }
  };
  walk(join(webDir, "src"));
  for (const pkg of ["realtime", "realtime-react"]) walk(join(webDir, "packages", pkg, "src"));
  for (const f of ["index.html", "vite.config.ts", "workspace-conditions.ts", "package-lock.json"]) consider(join(webDir, f));
  return newest;
}

/** launchBrowser starts headless Chromium with flags for a machine without internet. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-gpu",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
      "--disable-dev-shm-usage",
    ],
  });
}

/**
 * launchServer starts realtimed --dev serving the built demo, over HTTPS
 * with tls (see devCertificate); args are more flags.
 */
export function launchServer(options: { tls?: { cert: string; key: string }; args?: string[] } = {}): Promise<Realtimed> {
  return Realtimed.launch({ webDir: distDir, heartbeat: "5s", ...options });
}

/** devCertificate writes a throwaway certificate for 127.0.0.1 and its key into a new temporary directory. */
export function devCertificate(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "realtimed-cert-"));
  execFileSync(DEVCERT, ["--dir", dir, "--hosts", "127.0.0.1"]);
  return { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
}

/** screenshot saves a page under web/test-results/. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(resultsDir, `${name}.png`), fullPage: true, animations: "disabled" });
}

/** Demo wraps a page of the demo with the actions a person takes. */
export class Demo {
  /** errors are the page's uncaught exceptions and console.error messages, as they happened. */
  readonly errors: string[] = [];

  constructor(
    readonly page: Page,
    readonly baseUrl: string,
  ) {}

  static async open(context: BrowserContext, baseUrl: string): Promise<Demo> {
    const page = await context.newPage();
    const demo = new Demo(page, baseUrl);
    page.on("pageerror", (err) => {
      demo.errors.push(`[page error] ${err.message}`);
      console.error(`[page error] ${err.message}`);
    });
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      demo.errors.push(`[console] ${msg.text()}`);
      // Chromium's own line for each request refused while offline is expected noise.
      if (!msg.text().includes("net::ERR_INTERNET_DISCONNECTED")) console.error(`[console] ${msg.text()}`);
    });
    await page.goto(baseUrl);
    return demo;
  }

  get status(): Locator {
    return this.page.locator('.topbar [role="status"]');
  }

  async signIn(name: string): Promise<void> {
    await this.page.getByRole("button", { name: `Continue as ${name}` }).click();
    await this.waitForState("connected");
    await this.page.locator('section.list[data-loaded="true"]').waitFor();
  }

  async waitForState(state: string, timeout = 10_000): Promise<void> {
    await this.page.locator(`.topbar [role="status"][data-state="${state}"]`).waitFor({ timeout });
  }

  async state(): Promise<string | null> {
    return this.status.getAttribute("data-state");
  }

  async role(): Promise<string | null> {
    return this.status.getAttribute("data-role");
  }

  item(name: string): Locator {
    return this.page.locator(`[data-testid="item"][data-name="${name}"]`);
  }

  async add(name: string): Promise<void> {
    await this.page.getByPlaceholder("Add an item").fill(name);
    await this.page.getByPlaceholder("Add an item").press("Enter");
  }

  async toggle(name: string): Promise<void> {
    await this.page.getByRole("checkbox", { name: `${name}: in the basket` }).click();
  }

  async remove(name: string): Promise<void> {
    await this.page.getByRole("button", { name: `Remove ${name}` }).click();
  }

  async rename(from: string, to: string): Promise<void> {
    await this.page.getByRole("button", { name: `Rename ${from}` }).click();
    const input = this.page.getByRole("textbox", { name: `New name for ${from}` });
    await input.fill(to);
    await input.press("Enter");
  }

  async names(): Promise<string[]> {
    return this.page.locator('[data-testid="item"]').evaluateAll((els) => els.map((e) => e.getAttribute("data-name") ?? ""));
  }

  async resyncs(): Promise<number> {
    return Number(await this.page.locator("section.list").getAttribute("data-resyncs"));
  }
}
