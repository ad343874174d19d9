import { CloudOff, LoaderCircle, PlugZap, RefreshCw, ShieldAlert, Wifi, WifiOff, type LucideIcon } from "lucide-react";
import { useEffect, useId, useState, type CSSProperties, type ReactNode } from "react";
import { describeStatus, type RealtimeStatus } from "@honeydo/realtime";
import { useRealtimeStatus } from "./hooks.js";
import { useRealtimeClient } from "./realtime-provider.js";

interface Look {
  readonly icon: LucideIcon;
  readonly label: string;
  readonly tone: "ok" | "busy" | "warn" | "bad" | "off";
  readonly spin?: boolean;
}

/**
 * statusLook maps a status to its icon, short label and colour tone. The
 * label is what a person sees and a screen reader announces, so it names
 * only the states worth telling: Connecting (before the first welcome),
 * Live, Reconnecting, Offline, Signed out and Error. Why, and what
 * happens next, are in {@link describeStatus}.
 */
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
          return { icon: WifiOff, label: "Offline", tone: "bad" };
        case "unauthenticated":
          return { icon: ShieldAlert, label: "Signed out", tone: "bad" };
        case "forbidden":
          return { icon: ShieldAlert, label: "Error", tone: "bad" };
        case "incompatible":
        case "unavailable":
        case "invalid-cursor":
          return { icon: CloudOff, label: "Error", tone: "bad" };
      }
  }
}

/** ConnectionStatusProps: presentation, and what "Sign in again" does. */
export interface ConnectionStatusProps {
  /** Show the short label beside the icon. Default true. */
  readonly showLabel?: boolean;
  readonly className?: string;
  /**
   * onSignInAgain is called by the "Sign in again" button, shown when the
   * server refused the credential. Without it the button is not shown.
   */
  readonly onSignInAgain?: () => void;
}

/** Hidden from sight, not from screen readers. */
const visuallyHidden: CSSProperties = {
  position: "absolute",
  width: 1,
  height: 1,
  overflow: "hidden",
  clip: "rect(0 0 0 0)",
  whiteSpace: "nowrap",
};

/**
 * ConnectionStatus shows the connection as a badge (icon, colour and short
 * label) and, whenever it is not live, the details on the page beside it
 * ("Reconnecting in 3 s, attempt 2: server unavailable") with a "Retry
 * now" button and, when the credential was refused, "Sign in again".
 *
 * Only the badge is a live region, and its text is the label alone, so a
 * screen reader hears each state change once ("Connection: Reconnecting")
 * and not every tick of the countdown. The client keeps the label calm:
 * see the `quietReconnectMs` option of RealtimeClient. The buttons are
 * ordinary buttons, reachable by keyboard and touch.
 */
export function ConnectionStatus({ showLabel = true, className, onSignInAgain }: ConnectionStatusProps): ReactNode {
  const client = useRealtimeClient();
  const status = useRealtimeStatus();
  const detailsId = useId();
  const now = useClockWhile(status.state === "reconnecting" || (status.state === "error" && status.retryAt !== undefined));
  const look = statusLook(status);
  const detail = describeStatus(status, now);
  const trouble = status.state === "reconnecting" || status.state === "error";
  const refused = status.state === "error" && status.reason === "unauthenticated";
  const Icon = look.icon;
  return (
    <div className="connection-status-area" data-state={status.state}>
      <span
        role="status"
        aria-live="polite"
        aria-atomic="true"
        aria-describedby={trouble ? detailsId : undefined}
        title={detail}
        className={["connection-status", `connection-status--${look.tone}`, className].filter(Boolean).join(" ")}
        data-state={status.state}
        data-role={status.role}
      >
        <Icon aria-hidden="true" className={look.spin ? "connection-status__icon spin" : "connection-status__icon"} size={16} />
        <span style={visuallyHidden}>Connection: </span>
        <span className="connection-status__label" style={showLabel ? undefined : visuallyHidden}>
          {look.label}
        </span>
      </span>
      {trouble ? (
        <div className="connection-status__details" id={detailsId}>
          <span className="connection-status__detail">{detail}</span>
          <span className="connection-status__actions">
            <button type="button" className="connection-status__action" onClick={() => client.retryNow()}>
              Retry now
            </button>
            {refused && onSignInAgain !== undefined ? (
              <button type="button" className="connection-status__action" onClick={onSignInAgain}>
                Sign in again
              </button>
            ) : null}
          </span>
        </div>
      ) : null}
    </div>
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
