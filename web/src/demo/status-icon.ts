import { statusKind, type RealtimeStatus, type StatusKind } from "@honeydo/realtime";
import { CloudOff, LoaderCircle, PlugZap, RefreshCw, ShieldAlert, Wifi, WifiOff, type LucideIcon } from "lucide-react";

/** KIND_ICONS is the demo's icon per status kind: one per short label. */
const KIND_ICONS: { readonly [K in StatusKind]: LucideIcon } = {
  live: Wifi,
  connecting: LoaderCircle,
  reconnecting: RefreshCw,
  offline: PlugZap,
  signedOut: ShieldAlert,
  error: CloudOff,
};

/**
 * iconOf picks the demo's icon for a status: its kind's (statusKind), except
 * for two error reasons whose icon says more than their label. No network
 * is "Offline" like a stream that is simply not open, but shows as no
 * network; a user the server refuses is an "Error", but about access, like
 * a refused sign-in.
 */
export function iconOf(status: RealtimeStatus): LucideIcon {
  if (status.state === "error" && status.reason === "offline") return WifiOff;
  if (status.state === "error" && status.reason === "forbidden") return ShieldAlert;
  return KIND_ICONS[statusKind(status)];
}
