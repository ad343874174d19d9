import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { describe, expect, it } from "vitest";
import { ResumeStatus } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import { DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS } from "./backoff.js";
import type { ResyncReason } from "./events.js";
import {
  afterEnd,
  afterWelcome,
  backoffCeiling,
  DEFAULT_POLICY,
  RECONNECT,
  renewalTaken,
  renewInMs,
  renewRetryInMs,
  seamless,
  watchdogMs,
  type EndKind,
} from "./reconnect-policy.js";

// The table both clients run: testdata/reconnect/cases.json at the
// repository root (the Go suite is client/internal/reconnect).
interface Cases {
  numbers: Record<keyof typeof RECONNECT | "serverHeartbeatMs", number> & { jitter: string };
  backoff: { attempt: number; ceilingMs: number }[];
  endings: {
    name: string;
    given: {
      end: EndKind;
      code?: string;
      welcomed: boolean;
      livedMs: number;
      sentCursor: boolean;
      attempt: number;
      unauthStreak: number;
    };
    want: {
      action: string;
      reason: string;
      attempt: number;
      ceilingMs: number;
      refreshToken: boolean;
      dropCursor: boolean;
      unauthStreak: number;
    };
  }[];
  welcomes: {
    name: string;
    given: { resume: string; identityChanged: boolean; pending: string; first: boolean };
    want: { resync: string };
  }[];
  watchdog: { heartbeatMs: number; watchdogMs: number }[];
  renew: { leftMs: number; leadMs: number; inMs: number | null }[];
  renewRetry: { leftMs: number; try: number; inMs: number | null }[];
  switch: {
    name: string;
    given: { currentEndsMs: number; nextEndsMs: number | null; resume: string; sameIdentity: boolean };
    want: { taken: boolean; seamless: boolean };
  }[];
}

function findCases(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const p = join(dir, "testdata", "reconnect", "cases.json");
    if (existsSync(p)) return p;
    if (dirname(dir) === dir) throw new Error("testdata/reconnect/cases.json not found above this file");
  }
}

const cases = JSON.parse(readFileSync(findCases(), "utf8")) as Cases;

const resumes: Record<string, ResumeStatus> = {
  unspecified: ResumeStatus.UNSPECIFIED,
  resumed: ResumeStatus.RESUMED,
  expired: ResumeStatus.EXPIRED,
  "epoch-changed": ResumeStatus.EPOCH_CHANGED,
};

function resume(name: string): ResumeStatus {
  const r = resumes[name];
  if (r === undefined) throw new Error(`unknown resume ${name}`);
  return r;
}

function resync(name: string): ResyncReason | undefined {
  return name === "none" ? undefined : (name as ResyncReason);
}

describe("the reconnect contract (testdata/reconnect/cases.json)", () => {
  it("has the numbers this client uses", () => {
    const { jitter, serverHeartbeatMs, ...numbers } = cases.numbers;
    expect(jitter).toBe("full");
    expect(numbers).toEqual({ ...RECONNECT });
    expect(serverHeartbeatMs).toBe(RECONNECT.defaultHeartbeatMs);
    expect([DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS]).toEqual([numbers.backoffInitialMs, numbers.backoffMaxMs]);
  });

  it("backoff ceilings", () => {
    for (const c of cases.backoff) expect([c.attempt, backoffCeiling(c.attempt, DEFAULT_POLICY)]).toEqual([c.attempt, c.ceilingMs]);
  });

  it.each(cases.endings.map((c) => [c.name, c] as const))("ending: %s", (_name, c) => {
    const { code, ...given } = c.given;
    const parsed = code === undefined ? undefined : codeFromString(code);
    if (code !== undefined && parsed === undefined) throw new Error(`unknown code ${code}`);
    expect(afterEnd({ ...given, ...(parsed === undefined ? {} : { code: parsed }) })).toEqual(c.want);
  });

  it.each(cases.welcomes.map((c) => [c.name, c] as const))("welcome: %s", (_name, c) => {
    const got = afterWelcome({
      resume: resume(c.given.resume),
      identityChanged: c.given.identityChanged,
      pending: resync(c.given.pending),
      first: c.given.first,
    });
    expect(got).toBe(resync(c.want.resync));
  });

  it("timers", () => {
    for (const w of cases.watchdog) expect([w.heartbeatMs, watchdogMs(w.heartbeatMs)]).toEqual([w.heartbeatMs, w.watchdogMs]);
    for (const r of cases.renew) expect([r, renewInMs(r.leftMs, r.leadMs)]).toEqual([r, r.inMs ?? undefined]);
    for (const r of cases.renewRetry) expect([r, renewRetryInMs(r.leftMs, r.try)]).toEqual([r, r.inMs ?? undefined]);
  });

  it.each(cases.switch.map((c) => [c.name, c] as const))("renewal switch: %s", (_name, c) => {
    const now = Date.now();
    const g = c.given;
    expect({
      taken: renewalTaken(now + g.currentEndsMs, g.nextEndsMs === null ? undefined : now + g.nextEndsMs),
      seamless: seamless(resume(g.resume), g.sameIdentity),
    }).toEqual(c.want);
  });
});
