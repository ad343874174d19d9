import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { devTokenProvider, RealtimeClient, type TokenProvider } from "../client";
import { ShoppingService } from "../gen/honeydo/shopping/v1/shopping_pb";
import { freePort, Realtimed, SERVICE_KEY } from "../testing";
import { humanError, type ErrorContext } from "./errors";

// The errors come from a real realtimed (or a port nobody listens on), as
// the demo gets them.
let srv: Realtimed;
beforeAll(async () => {
  srv = await Realtimed.launch();
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
