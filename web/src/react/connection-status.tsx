import { CloudOff, LoaderCircle, PlugZap, RefreshCw, ShieldAlert, Wifi, WifiOff, type LucideIcon } from "lucide-react";
import { useEffect, useState, type ReactNode } from "react";
import { describeStatus, type RealtimeStatus } from "../client";
import { useRealtimeStatus } from "./hooks";

interface Look {
  readonly icon: LucideIcon;
  readonly label: string;
  readonly tone: "ok" | "busy" | "warn" | "bad" | "off";
  readonly spin?: boolean;
}

/** statusLook maps a status to its icon, short label and colour tone. */
export function statusLook(status: RealtimeStatus): Look {
  switch (status.state) {
    case "connected":
      return { icon: Wifi, label: "Live", tone: "ok" };
    case "connecting":
      return { icon: LoaderCircle, label: "Connecting", tone: "busy", spin: true };
    case "reconnecting":
      return { icon: RefreshCw, label: "Reconnecting", tone: "warn", spin: true };
    case "idle":
    case "disconnected":
      return { icon: PlugZap, label: "Offline", tone: "off" };
    case "error":
      switch (status.reason) {
        case "offline":
          return { icon: WifiOff, label: "No network", tone: "bad" };
        case "unauthenticated":
          return { icon: ShieldAlert, label: "Sign-in needed", tone: "bad" };
        case "forbidden":
          return { icon: ShieldAlert, label: "Access denied", tone: "bad" };
        case "incompatible":
          return { icon: CloudOff, label: "Not supported", tone: "bad" };
        case "unavailable":
        case "invalid-cursor":
          return { icon: CloudOff, label: "Server unavailable", tone: "bad" };
      }
  }
}

/** ConnectionStatusProps: presentation only. */
export interface ConnectionStatusProps {
  /** Show the short label beside the icon. Default true. */
  readonly showLabel?: boolean;
  readonly className?: string;
}

/**
 * ConnectionStatus shows the connection with an icon and a colour per
 * state, an accessible live label, and a tooltip with the details
 * ("Reconnecting in 3 s, attempt 2: server unavailable"). While a retry is
 * pending it ticks every second so the countdown stays true.
 */
export function ConnectionStatus({ showLabel = true, className }: ConnectionStatusProps): ReactNode {
  const status = useRealtimeStatus();
  const now = useClockWhile(status.state === "reconnecting" || (status.state === "error" && status.retryAt !== undefined));
  const look = statusLook(status);
  const detail = describeStatus(status, now);
  const Icon = look.icon;
  return (
    <span
      role="status"
      aria-live="polite"
      aria-label={`Connection: ${look.label}. ${detail}`}
      title={detail}
      className={["connection-status", `connection-status--${look.tone}`, className].filter(Boolean).join(" ")}
      data-state={status.state}
      data-role={status.role}
    >
      <Icon aria-hidden="true" className={look.spin ? "connection-status__icon spin" : "connection-status__icon"} size={16} />
      {showLabel ? <span className="connection-status__label">{look.label}</span> : null}
    </span>
  );
}

/**
 * useClockWhile re-renders every second while active and returns the time
 * of this render. Read at render, not kept in state: a status that has just
 * turned to "reconnecting" must count down from now, not from the last tick.
 */
function useClockWhile(active: boolean): number {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!active) return;
    const id = setInterval(() => setTick((t) => t + 1), 1000);
    return () => clearInterval(id);
  }, [active]);
  return Date.now();
}
