import { ConnectionStatus, type ConnectionStatusView } from "@honeydo/realtime-react";
import type { ReactNode } from "react";
import { iconOf } from "./status-icon";

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
