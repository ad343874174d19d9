import type { Interceptor } from "@connectrpc/connect";
import type { Event } from "./gen/honeydo/realtime/v1/realtime_pb.js";

/**
 * ORIGIN_HEADER carries a client's origin on its calls. The server copies it
 * into the events a call causes (`Event.origin`), so that the client that
 * acted can skip them while every other stream, the same person's other
 * devices and tabs included, applies them.
 */
export const ORIGIN_HEADER = "Realtime-Origin";

/**
 * originInterceptor sends `Realtime-Origin: <origin>` with every unary call.
 * A {@link RealtimeClient} adds it to its own transport; add it yourself
 * (with `client.origin`) to a transport you pass in `options.transport`.
 */
export function originInterceptor(origin: string): Interceptor {
  return (next) => (req) => {
    if (!req.stream) req.header.set(ORIGIN_HEADER, origin);
    return next(req);
  };
}

/**
 * isOwnEvent reports whether event was caused by a call of the client whose
 * origin is `origin`, signed in as `userId`. The sender must match too
 * (when known): an origin travels with every event its client causes, so a
 * household member who copied it must not be able to make that client skip
 * their changes.
 */
export function isOwnEvent(event: Event, origin: string, userId: string): boolean {
  return event.origin === origin && (userId === "" || event.senderUserId === userId);
}
