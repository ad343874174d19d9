import type { StatusLabels } from "@honeydo/realtime";
import { useId, type CSSProperties, type ReactNode } from "react";
import { useConnectionStatus, type ConnectionStatusView, type UseConnectionStatusOptions } from "./use-connection-status.js";

/** ConnectionStatusLabels are every text the default rendering shows; replace them to translate. */
export interface ConnectionStatusLabels extends StatusLabels {
  /** prefix is read before the label by screen readers only ("Connection: Live"). */
  readonly prefix: string;
  readonly retryNow: string;
  readonly signInAgain: string;
}

/** CONNECTION_STATUS_LABELS are the English texts of the default rendering. */
export const CONNECTION_STATUS_LABELS: Omit<ConnectionStatusLabels, keyof StatusLabels> = {
  prefix: "Connection: ",
  retryNow: "Retry now",
  signInAgain: "Sign in again",
};

/** ConnectionStatusProps: texts, slots and what "Sign in again" does. */
export interface ConnectionStatusProps extends Omit<UseConnectionStatusOptions, "labels"> {
  /** labels replace some or all of the English texts (status labels and buttons). */
  readonly labels?: Partial<ConnectionStatusLabels>;
  /** Show the short label beside the icon. Default true (hidden, it is still read by screen readers). */
  readonly showLabel?: boolean;
  /** className is added to the badge. */
  readonly className?: string;
  /**
   * onSignInAgain is called by the "Sign in again" button, shown when the
   * server refused the credential. Without it the button is not shown.
   */
  readonly onSignInAgain?: () => void;
  /** icon renders an icon at the start of the badge (decorative: it is hidden from screen readers). None by default. */
  readonly icon?: (view: ConnectionStatusView) => ReactNode;
  /**
   * children, a render prop, replaces the whole default rendering: it gets
   * the same view as {@link useConnectionStatus} (with the labels applied).
   */
  readonly children?: (view: ConnectionStatusView) => ReactNode;
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
 * ConnectionStatus is an unstyled connection indicator: a badge with the
 * short label and, whenever the stream is failing, the details beside it
 * ("Reconnecting in 3 s, attempt 2: server unavailable") with a "Retry
 * now" button and, when the credential was refused, "Sign in again". It
 * brings no CSS and no icons: style it by its class names
 * (`connection-status`, `connection-status--<tone>`,
 * `connection-status__label`, `__details`, `__detail`, `__actions`,
 * `__action`, `__icon-slot`) and `data-state`/`data-role`; add an icon with `icon`, or
 * render something else entirely with the `children` render prop.
 *
 * Only the badge is a live region, and its text is the label alone, so a
 * screen reader hears each state change once ("Connection: Reconnecting")
 * and not every tick of the countdown. The client keeps the label calm:
 * see the `quietReconnectMs` option of RealtimeClient. The buttons are
 * ordinary buttons, reachable by keyboard and touch.
 */
export function ConnectionStatus({
  labels,
  describe,
  showLabel = true,
  className,
  onSignInAgain,
  icon,
  children,
}: ConnectionStatusProps): ReactNode {
  const view = useConnectionStatus({ ...(labels ? { labels } : {}), ...(describe ? { describe } : {}) });
  const detailsId = useId();
  if (children !== undefined) return children(view);
  const text = { ...CONNECTION_STATUS_LABELS, ...labels };
  const { status } = view;
  return (
    <div className="connection-status-area" data-state={status.state}>
      <span
        role="status"
        aria-live="polite"
        aria-atomic="true"
        aria-describedby={view.trouble ? detailsId : undefined}
        title={view.detail}
        className={["connection-status", `connection-status--${view.tone}`, className].filter(Boolean).join(" ")}
        data-state={status.state}
        data-role={status.role}
      >
        {icon === undefined ? null : (
          <span className="connection-status__icon-slot" aria-hidden="true">
            {icon(view)}
          </span>
        )}
        <span style={visuallyHidden}>{text.prefix}</span>
        <span className="connection-status__label" style={showLabel ? undefined : visuallyHidden}>
          {view.label}
        </span>
      </span>
      {view.trouble ? (
        <div className="connection-status__details" id={detailsId}>
          <span className="connection-status__detail">{view.detail}</span>
          <span className="connection-status__actions">
            <button type="button" className="connection-status__action" onClick={view.retryNow}>
              {text.retryNow}
            </button>
            {view.kind === "signedOut" && onSignInAgain !== undefined ? (
              <button type="button" className="connection-status__action" onClick={onSignInAgain}>
                {text.signInAgain}
              </button>
            ) : null}
          </span>
        </div>
      ) : null}
    </div>
  );
}
