import type { RealtimeStatus } from "@honeydo/realtime";
import { ConnectionStatus, type ConnectionStatusView } from "@honeydo/realtime-react";
import { CloudOff, LoaderCircle, PlugZap, RefreshCw, ShieldAlert, Wifi, WifiOff, type LucideIcon } from "lucide-react";
import type { ReactNode } from "react";

/** iconOf picks the demo's icon for a status. */
function iconOf(status: RealtimeStatus): LucideIcon {
  switch (status.state) {
    case "connected":
      return Wifi;
    case "connecting":
      return LoaderCircle;
    case "reconnecting":
      return RefreshCw;
    case "idle":
    case "disconnected":
      return PlugZap;
    case "error":
      switch (status.reason) {
        case "offline":
          return WifiOff;
        case "unauthenticated":
        case "forbidden":
          return ShieldAlert;
        default:
          return CloudOff;
      }
  }
}

function StatusIcon({ view }: { view: ConnectionStatusView }): ReactNode {
  const Icon = iconOf(view.status);
  return <Icon className={view.busy ? "connection-status__icon spin" : "connection-status__icon"} size={16} />;
}

/**
 * ConnectionBadge is the demo's connection indicator: the package's
 * unstyled `<ConnectionStatus>` with an icon per status; styles.css gives it
 * its colours by tone.
 */
export function ConnectionBadge({ onSignInAgain }: { onSignInAgain: () => void }): ReactNode {
  return <ConnectionStatus onSignInAgain={onSignInAgain} icon={(view) => <StatusIcon view={view} />} />;
}
