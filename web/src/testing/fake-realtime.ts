import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { createRouterTransport, type Transport } from "@connectrpc/connect";
import {
  EventSchema,
  RealtimeService,
  ResumeStatus,
  type Event,
  type SubscribeResponse,
} from "../gen/honeydo/realtime/v1/realtime_pb";

/**
 * FakeRealtime is an in-memory RealtimeService for tests of code above the
 * client (React bindings): Subscribe sends a welcome, then whatever the
 * test pushes. Everything below the transport is covered by the tests that
 * run against a real realtimed.
 */
export class FakeRealtime {
  readonly transport: Transport;
  /** subscribes counts Subscribe calls. */
  subscribes = 0;
  private seq = 0;
  private readonly streams = new Set<(frame: SubscribeResponse | undefined) => void>();

  constructor(readonly userId = "alice", readonly householdId = "home") {
    this.transport = createRouterTransport(({ service }) => {
      service(RealtimeService, {
        subscribe: (_req, ctx) => this.stream(ctx.signal),
      });
    });
  }

  /** open is the number of streams open now. */
  get open(): number {
    return this.streams.size;
  }

  /** push sends one event with the given payload to every open stream. */
  push(payload: Event["payload"], senderUserId = "bob"): Event {
    const n = ++this.seq;
    const event = create(EventSchema, { id: `e${n}`, cursor: `c${n}`, senderUserId, payload });
    const frame: SubscribeResponse = {
      $typeName: "honeydo.realtime.v1.SubscribeResponse",
      frame: { case: "events", value: { $typeName: "honeydo.realtime.v1.EventBatch", events: [event] } },
    };
    for (const s of this.streams) s(frame);
    return event;
  }

  private async *stream(signal: AbortSignal): AsyncGenerator<SubscribeResponse> {
    this.subscribes++;
    const queue: SubscribeResponse[] = [];
    let wake: (() => void) | undefined;
    const sink = (f: SubscribeResponse | undefined): void => {
      if (f) queue.push(f);
      wake?.();
    };
    this.streams.add(sink);
    const onAbort = (): void => sink(undefined);
    signal.addEventListener("abort", onAbort);
    try {
      yield {
        $typeName: "honeydo.realtime.v1.SubscribeResponse",
        frame: {
          case: "welcome",
          value: {
            $typeName: "honeydo.realtime.v1.Welcome",
            userId: this.userId,
            sessionId: "s",
            householdId: this.householdId,
            rooms: [],
            resume: ResumeStatus.UNSPECIFIED,
            cursor: `c${this.seq}`,
            heartbeatInterval: durationFromMs(30_000),
          },
        },
      };
      while (!signal.aborted) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.streams.delete(sink);
    }
  }
}
