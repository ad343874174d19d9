import { fromBinary } from "@bufbuild/protobuf";
import { SubscribeRequestSchema } from "@honeydo/realtime/gen/honeydo/realtime/v1/realtime_pb";

/**
 * FlakyNetwork is a fetch that a test can unplug: cut() fails every request
 * in flight (open streams included) and every new one until restore(). It
 * also records the resume cursor of every Subscribe request it carries.
 */
export class FlakyNetwork {
  /** subscribeCursors are the resume_cursor values sent, in order. */
  readonly subscribeCursors: string[] = [];
  private up = true;
  private inflight = new Set<AbortController>();

  readonly fetch: typeof globalThis.fetch = async (input, init) => {
    if (!this.up) throw new TypeError("fetch failed: network is down");
    const url = input instanceof Request ? input.url : String(input);
    if (url.endsWith("/honeydo.realtime.v1.RealtimeService/Subscribe")) {
      const body = init?.body;
      if (body instanceof Uint8Array && body.length >= 5) {
        // Connect streaming request: one envelope, 5-byte prefix then the message.
        this.subscribeCursors.push(fromBinary(SubscribeRequestSchema, body.subarray(5)).resumeCursor);
      }
    }
    const ac = new AbortController();
    this.inflight.add(ac);
    const signal = init?.signal ? AbortSignal.any([init.signal, ac.signal]) : ac.signal;
    return globalThis.fetch(input, { ...init, signal });
  };

  /** cut drops every connection and refuses new ones. */
  cut(): void {
    this.up = false;
    for (const ac of this.inflight) ac.abort(new TypeError("network is down"));
    this.inflight.clear();
  }

  /** restore lets requests through again. */
  restore(): void {
    this.up = true;
  }
}
