import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get, type IncomingMessage } from "node:http";
import { get as getTLS } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// This file is web/packages/testing/src/realtimed.ts.
const webDir = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** realtimedBinary is $REALTIMED_BIN, or ../bin/realtimed relative to web/. */
export function realtimedBinary(): string {
  const bin = process.env.REALTIMED_BIN ?? resolve(webDir, "../bin/realtimed");
  if (!existsSync(bin)) {
    throw new Error(
      `realtimed not found at ${bin}: build it with \`cd .. && go build -o bin/realtimed ./cmd/realtimed\` ` +
        `or set REALTIMED_BIN to its absolute path`,
    );
  }
  return bin;
}

/** freePort asks the kernel for an unused loopback port. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** SERVICE_KEY is the Publish credential every test server accepts. */
export const SERVICE_KEY = "hds_test_service_key_0123456789abcdef";

/** RealtimedOptions configure a test server. */
export interface RealtimedOptions {
  /** --heartbeat, e.g. "1s". Default the server's (4s). */
  heartbeat?: string;
  /** --token-grace, e.g. "1s" (0 means the server's default, 30s). */
  tokenGrace?: string;
  /** --web-dir to serve at /. */
  webDir?: string;
  /** More flags. */
  args?: string[];
  /**
   * Serve HTTPS (HTTP/2 for browsers) with this PEM certificate and key
   * (--tls-cert, --tls-key); the helpers trust the certificate.
   */
  tls?: { cert: string; key: string };
}

/** StreamsSnapshot is GET /dev/streams. */
export interface StreamsSnapshot {
  open: number;
  byUser: Record<string, number>;
}

/**
 * Realtimed is a `realtimed --dev` child process on a free loopback port
 * with a temporary data directory. stop() and start() keep the port and the
 * data directory, so a restart looks like the same server to clients (with
 * a new in-memory history epoch).
 */
export class Realtimed {
  readonly baseUrl: string;
  private child: ChildProcess | undefined;
  private output = "";

  private constructor(
    readonly port: number,
    readonly dataDir: string,
    private readonly options: RealtimedOptions,
  ) {
    this.baseUrl = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  }

  /** launch starts a server and waits until it answers. */
  static async launch(options: RealtimedOptions = {}): Promise<Realtimed> {
    const r = new Realtimed(await freePort(), mkdtempSync(join(tmpdir(), "realtimed-web-")), options);
    await r.start();
    return r;
  }

  /** start (re)starts the process on the same port and data directory. */
  async start(): Promise<void> {
    if (this.child !== undefined) return;
    const args = [
      "--dev",
      "--addr",
      `127.0.0.1:${this.port}`,
      "--data-dir",
      this.dataDir,
      "--service-keys",
      `tests=${SERVICE_KEY}`,
      "--log-level",
      "warn",
    ];
    if (this.options.heartbeat) args.push("--heartbeat", this.options.heartbeat);
    if (this.options.tokenGrace) args.push("--token-grace", this.options.tokenGrace);
    if (this.options.webDir) args.push("--web-dir", this.options.webDir);
    if (this.options.tls) args.push("--tls-cert", this.options.tls.cert, "--tls-key", this.options.tls.key);
    args.push(...(this.options.args ?? []));
    const child = spawn(realtimedBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    child.stdout?.on("data", (b: Buffer) => (this.output += b.toString()));
    child.stderr?.on("data", (b: Buffer) => (this.output += b.toString()));
    let exited = false;
    child.once("exit", () => {
      exited = true;
      if (this.child === child) this.child = undefined;
    });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (exited) throw new Error(`realtimed exited at start:\n${this.output}`);
      try {
        if ((await this.get("/dev/streams")).status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`realtimed did not start:\n${this.output}`);
      await sleep(50);
    }
  }

  /** stop ends the process with SIGTERM (graceful: streams get UNAVAILABLE) and waits. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    const exited = new Promise<void>((res) => child.once("exit", () => res()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  /** restart stops and starts the server: same port and data, new history epoch. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** pause freezes the process (SIGSTOP): connections stay open but silent. */
  pause(): void {
    this.child?.kill("SIGSTOP");
  }

  /** resume undoes pause (SIGCONT). */
  resume(): void {
    this.child?.kill("SIGCONT");
  }

  /** dispose kills the server and removes its data directory. */
  async dispose(): Promise<void> {
    this.resume();
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** get is a GET of path on this server, trusting its certificate. */
  private get(path: string): Promise<{ status: number; body: string }> {
    const ca = this.options.tls ? readFileSync(this.options.tls.cert) : undefined;
    return httpGet(this.baseUrl + path, ca);
  }

  /** logs returns what the process printed. */
  logs(): string {
    return this.output;
  }

  /** streams returns GET /dev/streams. */
  async streams(): Promise<StreamsSnapshot> {
    const res = await this.get("/dev/streams");
    if (res.status !== 200) throw new Error(`GET /dev/streams: HTTP ${res.status}`);
    const body: unknown = JSON.parse(res.body);
    if (typeof body !== "object" || body === null || !("open" in body) || typeof body.open !== "number") {
      throw new Error("GET /dev/streams: unexpected body");
    }
    const byUser: Record<string, number> = {};
    if ("byUser" in body && typeof body.byUser === "object" && body.byUser !== null) {
      for (const [k, v] of Object.entries(body.byUser)) if (typeof v === "number") byUser[k] = v;
    }
    return { open: body.open, byUser };
  }
}

/**
 * httpGet is a GET with Node's own HTTP client: the helpers run in Node
 * whatever the test environment, and happy-dom replaces `fetch` with a
 * browser's (same-origin policy and all) in the React tests. An https URL
 * is trusted with ca (PEM), or the system's roots.
 */
export function httpGet(url: string, ca?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const done = (msg: IncomingMessage): void => {
      let body = "";
      msg.setEncoding("utf8");
      msg.on("data", (chunk: string) => (body += chunk));
      msg.on("end", () => res({ status: msg.statusCode ?? 0, body }));
      msg.on("error", rej);
    };
    (url.startsWith("https:") ? getTLS(url, { ca }, done) : get(url, done)).on("error", rej);
  });
}

/** sleep waits ms milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

/**
 * waitFor polls fn every `interval` ms until it returns a value other than
 * undefined/false, and fails with `what` after `timeout` ms.
 */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeout = 5000,
  interval = 20,
): Promise<T> {
  const deadline = Date.now() + timeout;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ""}`);
    }
    await sleep(interval);
  }
}
