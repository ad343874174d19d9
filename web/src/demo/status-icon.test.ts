import { expect, test } from "vitest";
import { CloudOff, LoaderCircle, PlugZap, RefreshCw, ShieldAlert, Wifi, WifiOff, type LucideIcon } from "lucide-react";
import type { RealtimeStatus } from "@honeydo/realtime";
import { iconOf } from "./status-icon";

// Pure mapping, so a table is the whole test: every state and error reason.
test("iconOf gives each status the demo's icon", () => {
  const cases: [RealtimeStatus, LucideIcon][] = [
    [{ state: "idle", role: "solo" }, PlugZap],
    [{ state: "connecting", attempt: 0, role: "solo" }, LoaderCircle],
    [{ state: "connected", since: 1, userId: "u", householdId: "h", role: "leader" }, Wifi],
    [{ state: "reconnecting", attempt: 1, delayMs: 1, retryAt: 2, reason: "unavailable", message: "", role: "solo" }, RefreshCw],
    [{ state: "disconnected", role: "follower" }, PlugZap],
    [{ state: "error", reason: "offline", message: "", role: "solo" }, WifiOff],
    [{ state: "error", reason: "unauthenticated", message: "", role: "solo" }, ShieldAlert],
    [{ state: "error", reason: "forbidden", message: "", role: "solo" }, ShieldAlert],
    [{ state: "error", reason: "incompatible", message: "", role: "solo" }, CloudOff],
    [{ state: "error", reason: "unavailable", message: "", role: "solo" }, CloudOff],
    [{ state: "error", reason: "invalid-cursor", message: "", role: "solo" }, CloudOff],
  ];
  for (const [status, icon] of cases) expect(iconOf(status), JSON.stringify(status)).toBe(icon);
});
