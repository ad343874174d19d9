import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { devTokenProvider, RealtimeClient, type TokenProvider } from "@honeydo/realtime";
import { ShoppingService } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";
import { freePort, Realtimed, SERVICE_KEY } from "@honeydo/realtime-testing";
import { humanError, outcomeUnknown, type ErrorContext } from "./errors";

// The errors come from a real realtimed (or a port nobody listens on), as
// the demo gets them.
/** MAX_ITEMS is the server's per-household cap, small enough to reach. */
const MAX_ITEMS = 2;
let srv: Realtimed;
beforeAll(async () => {
  srv = await Realtimed.launch({ args: ["--max-items-per-household", String(MAX_ITEMS)] });
});
afterAll(async () => {
  await srv?.dispose();
});

function shopping(baseUrl: string, getToken: TokenProvider) {
  return new RealtimeClient({ baseUrl, getToken, crossTab: false }).service(ShoppingService);
}

async function failure(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  throw new Error("the call succeeded");
}

describe("humanError", () => {
  const alice = () => shopping(srv.baseUrl, devTokenProvider({ baseUrl: srv.baseUrl, user: "alice", household: "errors" }));
  const cases: { name: string; call: () => Promise<unknown>; context: ErrorContext; want: RegExp }[] = [
    {
      name: "server down, loading",
      call: async () => shopping(`http://127.0.0.1:${await freePort()}`, () => "t").listItems({}),
      context: "load",
      want: /^Couldn't reach HoneyDo — we'll retry/,
    },
    {
      name: "server down, changing",
      call: async () => shopping(`http://127.0.0.1:${await freePort()}`, () => "t").addItem({ name: "Milk" }),
      context: "change",
      want: /^Couldn't reach HoneyDo\. Check your connection/,
    },
    {
      name: "token refused",
      call: () => shopping(srv.baseUrl, () => "not-a-token").listItems({}),
      context: "load",
      want: /Sign in again/,
    },
    {
      name: "a service key on a person's API",
      call: () => shopping(srv.baseUrl, () => SERVICE_KEY).listItems({}),
      context: "load",
      want: /don't have access/,
    },
    { name: "bad input", call: () => alice().addItem({ name: "x".repeat(201) }), context: "change", want: /couldn't accept that/ },
    {
      name: "item gone",
      call: async () => {
        const { item } = await alice().addItem({ name: "Gone soon" });
        await alice().removeItem({ itemId: item?.id ?? "" });
        return alice().updateItem({ itemId: item?.id ?? "", checked: true });
      },
      context: "change",
      want: /no longer on the list/,
    },
    {
      name: "an add to a full list",
      call: async () => {
        const bob = shopping(srv.baseUrl, devTokenProvider({ baseUrl: srv.baseUrl, user: "bob", household: "errors-full" }));
        for (let i = 0; i < MAX_ITEMS; i++) await bob.addItem({ name: `item ${i}` });
        return bob.addItem({ name: "one too many" });
      },
      context: "change",
      want: /^This list is full — remove some items to add more\.$/,
    },
  ];
  test.each(cases)("$name", async ({ call, context, want }) => {
    const err = await failure(call);
    const text = humanError(err, context);
    expect(text).toMatch(want);
    // Never the raw text of the server or the browser.
    expect(text).not.toMatch(/fetch|shopping:|HTTP|invalid|unauthenticated|\[/i);
    expect(text).not.toContain(err instanceof Error ? err.message : String(err));
  });

  test("anything else is a plain apology", () => {
    expect(humanError(new Error("boom: nil pointer"), "change")).toBe("Something went wrong at HoneyDo. Try again in a moment.");
  });
});

describe("outcomeUnknown", () => {
  // Codes after which the server may have committed the change; the rest
  // are refusals.
  test.each([
    [Code.DeadlineExceeded, true],
    [Code.Unavailable, true],
    [Code.Unknown, true],
    [Code.Internal, true],
    [Code.Canceled, true],
    [Code.InvalidArgument, false],
    [Code.NotFound, false],
    [Code.FailedPrecondition, false],
    [Code.ResourceExhausted, false],
    [Code.Unauthenticated, false],
    [Code.PermissionDenied, false],
  ])("%s → %s", (code, want) => {
    expect(outcomeUnknown(new ConnectError("x", code))).toBe(want);
  });
});
