// A slice of the HoneyDo API server: routes that save something, answer
// the caller, and tell everyone else through HoneyDo Realtime.
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { Notification_Level } from "@honeydo/realtime/gen/honeydo/system/v1/events_pb";
import type { Publisher } from "./publisher.js";

/** Caller is who made the request. The real server takes it from Clerk (getAuth(request)). */
interface Caller {
  userId: string;
  householdId: string;
}

/**
 * callerOf stands in for Clerk here: it reads X-User-Id and X-Household-Id,
 * which only a trusted test may send. Never do this in production.
 */
function callerOf(req: FastifyRequest): Caller | undefined {
  const userId = req.headers["x-user-id"];
  const householdId = req.headers["x-household-id"];
  if (typeof userId !== "string" || typeof householdId !== "string" || !userId || !householdId) {
    return undefined;
  }
  return { userId, householdId };
}

/** Item is what the example "saves". */
interface Item {
  id: string;
  name: string;
  addedBy: string;
}

/** buildApp returns the Fastify app; items are kept in memory, per household. */
export function buildApp(realtime: Publisher): FastifyInstance {
  const app = Fastify({ logger: { level: "warn" } });
  const items = new Map<string, Item[]>();

  // The household's shopping list gets an item: saved first, then
  // everyone else in the household hears of it. The acting tab sends its
  // Realtime-Origin header and skips the event; the actor's other devices
  // get it.
  app.post<{ Body: { name?: unknown } }>("/api/items", async (req, reply) => {
    const caller = callerOf(req);
    if (!caller) return reply.code(401).send({ error: "sign in" });
    const name = typeof req.body?.name === "string" ? req.body.name.trim() : "";
    if (!name) return reply.code(400).send({ error: "name is required" });

    const item: Item = { id: randomUUID(), name, addedBy: caller.userId };
    const list = items.get(caller.householdId) ?? [];
    list.push(item);
    items.set(caller.householdId, list);

    const origin = req.headers["realtime-origin"];
    await realtime.toOthers(caller.householdId, caller.userId, typeof origin === "string" ? origin : undefined, {
      payload: {
        case: "itemAdded",
        value: { item: { id: item.id, name: item.name, addedByUserId: caller.userId } },
      },
    });
    return reply.code(201).send(item);
  });

  // A household notice that leaves the author out entirely (all of their
  // devices): Target.except_user_id.
  app.post<{ Body: { message?: unknown } }>("/api/household/notice", async (req, reply) => {
    const caller = callerOf(req);
    if (!caller) return reply.code(401).send({ error: "sign in" });
    const message = typeof req.body?.message === "string" ? req.body.message : "";
    if (!message) return reply.code(400).send({ error: "message is required" });
    const res = await realtime.toHousehold(
      caller.householdId,
      { senderUserId: caller.userId, payload: { case: "notification", value: { message } } },
      caller.userId,
    );
    return reply.code(202).send({ eventId: res.eventId });
  });

  // One user's setting changed: every device of that user follows.
  app.put<{ Params: { key: string }; Body: { value?: unknown } }>("/api/settings/:key", async (req, reply) => {
    const caller = callerOf(req);
    if (!caller) return reply.code(401).send({ error: "sign in" });
    const value = typeof req.body?.value === "string" ? req.body.value : "";
    await realtime.toUser(caller.userId, { payload: { case: "settingUpdated", value: { key: req.params.key, value } } });
    return reply.code(204).send();
  });

  // An announcement to everyone connected (an admin route in real life).
  app.post<{ Body: { message?: unknown } }>("/api/announcements", async (req, reply) => {
    const message = typeof req.body?.message === "string" ? req.body.message : "";
    if (!message) return reply.code(400).send({ error: "message is required" });
    await realtime.broadcast({ payload: { case: "notification", value: { level: Notification_Level.INFO, message } } });
    return reply.code(202).send();
  });

  return app;
}
