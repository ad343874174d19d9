import { CircleCheck, CircleX, Info, TriangleAlert, X, type LucideIcon } from "lucide-react";
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { Notification_Level } from "@honeydo/realtime/gen/honeydo/system/v1/events_pb";
import { useRealtimeEvent } from "@honeydo/realtime-react";
import { newId } from "./session";

export type ToastLevel = "info" | "success" | "warning" | "error";

export interface Toast {
  readonly id: string;
  readonly level: ToastLevel;
  readonly title?: string;
  readonly message: string;
}

interface ToastApi {
  push(toast: Omit<Toast, "id"> & { id?: string }): void;
  dismiss(id: string): void;
}

const ToastContext = createContext<ToastApi | undefined>(undefined);

/** useToasts returns the toast API of the nearest ToastProvider. */
export function useToasts(): ToastApi {
  const api = useContext(ToastContext);
  if (api === undefined) throw new Error("useToasts: no <ToastProvider> above this component");
  return api;
}

const ICONS: Record<ToastLevel, LucideIcon> = {
  info: Info,
  success: CircleCheck,
  warning: TriangleAlert,
  error: CircleX,
};

/** ToastProvider shows toasts in a corner; each goes away after a few seconds. */
export function ToastProvider({ children }: { children: ReactNode }): ReactNode {
  const [toasts, setToasts] = useState<readonly Toast[]>([]);
  const timers = useRef(new Map<string, ReturnType<typeof setTimeout>>());
  const dismiss = useCallback((id: string) => {
    setToasts((ts) => ts.filter((t) => t.id !== id));
    const timer = timers.current.get(id);
    if (timer !== undefined) clearTimeout(timer);
    timers.current.delete(id);
  }, []);
  const push = useCallback(
    (t: Omit<Toast, "id"> & { id?: string }) => {
      const id = t.id ?? newId("toast");
      if (timers.current.has(id)) return; // already showing
      setToasts((ts) => [...ts.slice(-3), { ...t, id }]);
      timers.current.set(
        id,
        setTimeout(() => dismiss(id), t.level === "error" ? 8000 : 5000),
      );
    },
    [dismiss],
  );
  useEffect(() => {
    const map = timers.current;
    return () => {
      for (const timer of map.values()) clearTimeout(timer);
    };
  }, []);
  const api = useMemo(() => ({ push, dismiss }), [push, dismiss]);
  return (
    <ToastContext.Provider value={api}>
      {children}
      <section className="toasts" aria-label="Notifications">
        {toasts.map((t) => {
          const Icon = ICONS[t.level];
          return (
            <div
              key={t.id}
              className={`toast toast--${t.level}`}
              role={t.level === "error" ? "alert" : "status"}
              data-testid="toast"
            >
              <Icon className="toast__icon" size={20} aria-hidden="true" />
              <div className="toast__body">
                {t.title ? <strong className="toast__title">{t.title}</strong> : null}
                <span className="toast__message">{t.message}</span>
              </div>
              <button type="button" className="icon-button toast__close" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
                <X size={16} aria-hidden="true" />
              </button>
            </div>
          );
        })}
      </section>
    </ToastContext.Provider>
  );
}

function levelOf(level: Notification_Level): ToastLevel {
  switch (level) {
    case Notification_Level.SUCCESS:
      return "success";
    case Notification_Level.WARNING:
      return "warning";
    case Notification_Level.ERROR:
      return "error";
    default:
      return "info";
  }
}

/** NotificationToasts turns system.v1 Notification events into toasts. */
export function NotificationToasts(): null {
  const { push } = useToasts();
  useRealtimeEvent("notification", (n, event) => {
    push({
      id: n.id ? `note:${n.id}` : `event:${event.id}`,
      level: levelOf(n.level),
      message: n.message,
      ...(n.title ? { title: n.title } : {}),
    });
  });
  return null;
}
