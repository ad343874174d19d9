// The Node counterpart of Socket.io's socketEmitter: toUser, toHousehold,
// toOthers and broadcast, over the Publish RPC with a service key.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  EventSchema,
  RealtimeService,
  TargetSchema,
  type PublishResponse,
} from "@honeydo/realtime/gen/honeydo/realtime/v1/realtime_pb";

/** EventInit is an event as the caller writes it: a payload, and optionally id, sender and origin. */
export type EventInit = MessageInitShape<typeof EventSchema>;

/** PublisherOptions says where realtimed is and how to authenticate. */
export interface PublisherOptions {
  /** baseUrl of realtimed, e.g. "http://127.0.0.1:8080" or "https://realtime.internal". */
  baseUrl: string;
  /** serviceKey is one of realtimed's --service-keys (hds_…); realtimed --dev prints its own. */
  serviceKey: string;
  /** timeoutMs bounds each Publish call; default 5000. */
  timeoutMs?: number;
}

/** Publisher sends events to the streams of a user, a household, or everyone. */
export class Publisher {
  private readonly client: Client<typeof RealtimeService>;
  private readonly timeoutMs: number;

  constructor(opts: PublisherOptions) {
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("Authorization", `Bearer ${opts.serviceKey}`);
      return next(req);
    };
    // The Connect protocol over HTTP/1.1 works through any proxy; use
    // httpVersion "2" for HTTP/2 over TLS or to an h2c port.
    const transport = createConnectTransport({ baseUrl: opts.baseUrl, httpVersion: "1.1", interceptors: [bearer] });
    this.client = createClient(RealtimeService, transport);
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  /** toUser reaches every stream (device, tab) of one user. */
  toUser(userId: string, event: EventInit): Promise<PublishResponse> {
    return this.publish({ to: { case: "userId", value: userId } }, event);
  }

  /**
   * toHousehold reaches every member of a household; exceptUserId leaves
   * every stream of one user out.
   */
  toHousehold(householdId: string, event: EventInit, exceptUserId = ""): Promise<PublishResponse> {
    return this.publish({ to: { case: "householdId", value: householdId }, exceptUserId }, event);
  }

  /**
   * toOthers is what a route does after the acting user changed something:
   * the household gets the event, the actor's other devices and tabs
   * included, and the client that made the request (its Realtime-Origin
   * header, passed as origin) skips it, having the route's answer already.
   */
  toOthers(householdId: string, actorUserId: string, origin: string | undefined, event: EventInit): Promise<PublishResponse> {
    return this.toHousehold(householdId, { ...event, senderUserId: actorUserId, origin: origin ?? "" });
  }

  /** broadcast reaches everyone connected. */
  broadcast(event: EventInit): Promise<PublishResponse> {
    return this.publish({ to: { case: "broadcast", value: {} } }, event);
  }

  private publish(target: MessageInitShape<typeof TargetSchema>, event: EventInit): Promise<PublishResponse> {
    return this.client.publish({ target, event: create(EventSchema, event) }, { timeoutMs: this.timeoutMs });
  }
}
