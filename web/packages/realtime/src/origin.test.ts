import { create } from "@bufbuild/protobuf";
import { expect, test } from "vitest";
import { EventSchema } from "./gen/honeydo/realtime/v1/realtime_pb.js";
import { isOwnEvent } from "./origin.js";

test.each([
  { name: "own origin and user", origin: "tab-1", sender: "alice", want: true },
  { name: "another tab's origin", origin: "tab-2", sender: "alice", want: false },
  { name: "no origin", origin: "", sender: "alice", want: false },
  // Bob copied Alice's tab origin from one of her events: Alice still sees Bob's change.
  { name: "own origin, another user", origin: "tab-1", sender: "bob", want: false },
])("isOwnEvent: $name → $want", ({ origin, sender, want }) => {
  const ev = create(EventSchema, { id: "e1", origin, senderUserId: sender });
  expect(isOwnEvent(ev, "tab-1", "alice")).toBe(want);
});
