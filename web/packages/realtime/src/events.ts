import type { Event } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import { Listeners } from "./listeners.js";

/** EventCase is the name of one case of Event.payload, e.g. "itemAdded". */
export type EventCase = NonNullable<Event["payload"]["case"]>;

/** EventPayload is the generated message type of one payload case. */
export type EventPayload<C extends EventCase> = Extract<Event["payload"], { case: C }>["value"];

/** EventHandler handles one payload case; `event` is the whole envelope. */
export type EventHandler<C extends EventCase> = (payload: EventPayload<C>, event: Event) => void;

/** AnyEventHandler sees every event. */
export type AnyEventHandler = (event: Event) => void;

/** Why the app must refetch its state; see RealtimeClient.onResync. */
export type ResyncReason =
  /** The first stream of this client (or this tab) started: events before it are unknown. */
  | "initial"
  /** The resume cursor was older than the server's history window. */
  | "expired"
  /** The server lost its history since the cursor was issued (e.g. restarted). */
  | "epoch-changed"
  /** The server rejected the resume cursor (not one it issued): the stream restarted without it. */
  | "invalid-cursor"
  /**
   * The stream now serves another user, household or set of rooms than the
   * previous one (its token changed identity, e.g. an organization switch):
   * the app's state is of the old one.
   */
  | "identity-changed";

/** ResyncHandler is told to refetch. */
export type ResyncHandler = (reason: ResyncReason) => void;

type Untyped = (payload: unknown, event: Event) => void;

/**
 * EventHub keeps the handlers of each payload case and calls them in the
 * order they were added. A handler that throws is reported to `onError` and
 * does not stop the others. Handlers may unsubscribe during dispatch. That
 * calling convention is Listeners'; EventHub only picks which of them an
 * event goes to.
 */
export class EventHub {
  private readonly byCase = new Map<EventCase, Listeners<[unknown, Event]>>();
  private readonly anyHandlers: Listeners<[Event]>;

  constructor(private readonly onError: (err: unknown) => void) {
    this.anyHandlers = new Listeners(onError);
  }

  on<C extends EventCase>(c: C, handler: EventHandler<C>): () => void {
    let listeners = this.byCase.get(c);
    if (listeners === undefined) {
      listeners = new Listeners(this.onError);
      this.byCase.set(c, listeners);
    }
    // Stored under its case and only ever called with that case's payload.
    return listeners.add(handler as Untyped);
  }

  onAny(handler: AnyEventHandler): () => void {
    return this.anyHandlers.add(handler);
  }

  /** clear removes every handler. */
  clear(): void {
    this.byCase.clear();
    this.anyHandlers.clear();
  }

  dispatch(event: Event): void {
    const { case: c, value } = event.payload;
    if (c !== undefined) this.byCase.get(c)?.emit(value, event);
    this.anyHandlers.emit(event);
  }
}
