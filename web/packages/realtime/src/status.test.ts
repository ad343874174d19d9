import { expect, test } from "vitest";
import { describeStatus } from "./status.js";

test("describeStatus gives the details a tooltip shows", () => {
  const now = 1_000_000;
  expect(
    describeStatus(
      {
        state: "reconnecting",
        attempt: 2,
        delayMs: 3000,
        retryAt: now + 2100,
        reason: "unavailable",
        message: "x",
        role: "solo",
      },
      now,
    ),
  ).toBe("Reconnecting in 3 s, attempt 2: server unavailable");
  expect(describeStatus({ state: "connected", since: now, userId: "a", householdId: "h", role: "follower" }, now)).toBe(
    "Live: changes appear instantly (shared from another tab)",
  );
  expect(describeStatus({ state: "error", reason: "unauthenticated", message: "", role: "solo" }, now)).toBe(
    "sign-in expired or rejected",
  );
  expect(describeStatus({ state: "error", reason: "offline", message: "", retryAt: now + 4000, role: "solo" }, now)).toBe(
    "you are offline; retrying in 4 s",
  );
  expect(describeStatus({ state: "error", reason: "forbidden", message: "", role: "solo" }, now)).toBe(
    "the server refused access",
  );
  expect(
    describeStatus(
      { state: "reconnecting", attempt: 1, delayMs: 0, retryAt: now, reason: "invalid-cursor", message: "", role: "solo" },
      now,
    ),
  ).toBe("Reconnecting now, attempt 1: resume position rejected, starting fresh");
});
