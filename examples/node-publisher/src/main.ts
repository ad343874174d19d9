// Runs the example: HONEYDO_REALTIME_URL and HONEYDO_REALTIME_SERVICE_KEY
// say where realtimed is and which service key to publish with; PORT
// (default 3000) and HOST (default 127.0.0.1) where to listen.
import { buildApp } from "./app.js";
import { Publisher } from "./publisher.js";

function required(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`node-publisher: set ${name}`);
    process.exit(2);
  }
  return v;
}

const realtime = new Publisher({
  baseUrl: required("HONEYDO_REALTIME_URL"),
  serviceKey: required("HONEYDO_REALTIME_SERVICE_KEY"),
});
const app = buildApp(realtime);
const address = await app.listen({ host: process.env["HOST"] ?? "127.0.0.1", port: Number(process.env["PORT"] ?? 3000) });
console.log(`node-publisher listening on ${address}`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0));
  });
}
