import { expect, test } from "vitest";
import { STATUS_LABELS, statusKind, statusTone, type RealtimeStatus } from "./index.js";

// Pure mapping, so a table is the whole test: every state and error reason.
test("statusKind and statusTone name each status the way a person should hear it", () => {
  const cases: [RealtimeStatus, string, string][] = [
    [{ state: "idle", role: "solo" }, "Offline", "off"],
    [{ state: "connecting", attempt: 0, role: "solo" }, "Connecting", "busy"],
    [{ state: "connected", since: 1, userId: "u", householdId: "h", role: "leader" }, "Live", "ok"],
    [
      { state: "reconnecting", attempt: 1, delayMs: 1, retryAt: 2, reason: "unavailable", message: "", role: "solo" },
      "Reconnecting",
      "warn",
    ],
    [{ state: "disconnected", role: "follower" }, "Offline", "off"],
    [{ state: "error", reason: "offline", message: "", role: "solo" }, "Offline", "bad"],
    [{ state: "error", reason: "unauthenticated", message: "", role: "solo" }, "Signed out", "bad"],
    [{ state: "error", reason: "forbidden", message: "", role: "solo" }, "Error", "bad"],
    [{ state: "error", reason: "incompatible", message: "", role: "solo" }, "Error", "bad"],
    [{ state: "error", reason: "unavailable", message: "", role: "solo" }, "Error", "bad"],
  ];
  for (const [status, label, tone] of cases) {
    expect([STATUS_LABELS[statusKind(status)], statusTone(status)], JSON.stringify(status)).toEqual([label, tone]);
  }
});
