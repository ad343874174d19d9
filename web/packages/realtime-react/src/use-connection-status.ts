import {
  describeStatus,
  STATUS_LABELS,
  statusKind,
  statusTone,
  type RealtimeStatus,
  type StatusKind,
  type StatusLabels,
  type StatusTone,
} from "@honeydo/realtime";
import { useCallback, useEffect, useState } from "react";
import { useRealtimeStatus } from "./hooks.js";
import { useRealtimeClient } from "./realtime-provider.js";

/** ConnectionStatusView is everything a connection indicator shows, ready to render. */
export interface ConnectionStatusView {
  /** status is the client's status, as useRealtimeStatus returns it. */
  readonly status: RealtimeStatus;
  /** kind picks the short label (see statusKind in @honeydo/realtime). */
  readonly kind: StatusKind;
  /** tone is the badge's colour: ok, busy, warn, bad or off. */
  readonly tone: StatusTone;
  /** label is the short label, from the labels given (English by default). */
  readonly label: string;
  /** detail is the sentence saying why and what next, e.g. "Reconnecting in 3 s, attempt 2: server unavailable". */
  readonly detail: string;
  /** busy is true while an attempt is under way or pending (connecting, reconnecting): a spinner fits. */
  readonly busy: boolean;
  /** trouble is true while the stream is failing (reconnecting or an error): show the detail and a retry. */
  readonly trouble: boolean;
  /** retryNow reconnects at once if the stream is failing (a "Retry now" button). */
  readonly retryNow: () => void;
}

/** UseConnectionStatusOptions: the texts, for translation. */
export interface UseConnectionStatusOptions {
  /** labels replace some or all of the English short labels. */
  readonly labels?: Partial<StatusLabels>;
  /**
   * describe replaces the English detail sentence (describeStatus). `now`
   * is the render's time, for countdowns to `retryAt`.
   */
  readonly describe?: (status: RealtimeStatus, now: number) => string;
}

/**
 * useConnectionStatus is the headless connection indicator: the status of
 * the nearest RealtimeProvider's client with its label, tone and detail,
 * and a retry. It re-renders when the status changes and, while a retry is
 * counting down, every second, so a detail like "in 3 s" stays true.
 * Reading it keeps the stream open, as useRealtimeStatus does.
 */
export function useConnectionStatus(options: UseConnectionStatusOptions = {}): ConnectionStatusView {
  const client = useRealtimeClient();
  const status = useRealtimeStatus();
  const now = useClockWhile(status.state === "reconnecting" || (status.state === "error" && status.retryAt !== undefined));
  const retryNow = useCallback(() => client.retryNow(), [client]);
  const kind = statusKind(status);
  return {
    status,
    kind,
    tone: statusTone(status),
    label: options.labels?.[kind] ?? STATUS_LABELS[kind],
    detail: (options.describe ?? describeStatus)(status, now),
    busy: status.state === "connecting" || status.state === "reconnecting",
    trouble: status.state === "reconnecting" || status.state === "error",
    retryNow,
  };
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
