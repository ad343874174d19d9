import { describe, expect, test } from "vitest";
import { backoffCap, backoffDelay, DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS } from "./backoff.js";

describe("backoffCap", () => {
  test("doubles from the initial delay up to the maximum (defaults 1 s and 5 s)", () => {
    expect(DEFAULT_INITIAL_DELAY_MS).toBe(1000);
    expect(DEFAULT_MAX_DELAY_MS).toBe(5000);
    expect([1, 2, 3, 4, 5, 50].map((n) => backoffCap(n))).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
  });

  test("is configurable", () => {
    const o = { initialDelayMs: 100, maxDelayMs: 700 };
    expect([1, 2, 3, 4, 5].map((n) => backoffCap(n, o))).toEqual([100, 200, 400, 700, 700]);
  });

  test("is zero before the first retry and finite for huge attempts", () => {
    expect(backoffCap(0)).toBe(0);
    expect(backoffCap(1e9)).toBe(5000);
  });
});

describe("backoffDelay", () => {
  test("uses full jitter: random in [0, cap]", () => {
    expect(backoffDelay(3, {}, () => 0)).toBe(0);
    expect(backoffDelay(3, {}, () => 0.5)).toBe(2000);
    expect(backoffDelay(3, {}, () => 0.999999)).toBe(4000);
    expect(backoffDelay(9, {}, () => 0.999999)).toBe(5000);
  });

  test("spreads retries over the whole window", () => {
    for (const attempt of [1, 2, 3, 4, 8]) {
      const cap = backoffCap(attempt);
      const samples = Array.from({ length: 2000 }, () => backoffDelay(attempt));
      for (const d of samples) {
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(cap);
      }
      expect(Math.min(...samples)).toBeLessThan(cap * 0.1);
      expect(Math.max(...samples)).toBeGreaterThan(cap * 0.9);
      expect(new Set(samples).size).toBeGreaterThan(100);
      const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
      expect(mean).toBeGreaterThan(cap * 0.4);
      expect(mean).toBeLessThan(cap * 0.6);
    }
  });

  test("clamps a misbehaving random source", () => {
    expect(backoffDelay(1, {}, () => -3)).toBe(0);
    expect(backoffDelay(1, {}, () => 7)).toBe(1000);
  });
});
