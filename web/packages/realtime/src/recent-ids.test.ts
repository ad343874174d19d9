import { expect, test } from "vitest";
import { RecentIds } from "./recent-ids.js";

test("RecentIds reports repeats and forgets the oldest beyond capacity", () => {
  const ids = new RecentIds(3);
  expect(ids.add("a")).toBe(true);
  expect(ids.add("a")).toBe(false);
  expect(ids.add("b")).toBe(true);
  expect(ids.add("c")).toBe(true);
  expect(ids.add("d")).toBe(true); // evicts a
  expect(ids.has("a")).toBe(false);
  expect(ids.add("b")).toBe(false);
  expect(ids.add("a")).toBe(true); // evicts b
  expect(ids.has("b")).toBe(false);
  expect(ids.has("c") && ids.has("d")).toBe(true);
});

test("RecentIds treats an empty id as always new", () => {
  const ids = new RecentIds();
  expect(ids.add("")).toBe(true);
  expect(ids.add("")).toBe(true);
});
