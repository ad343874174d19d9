#!/usr/bin/env bash
# Tests the npm packages as an app outside the workspace gets them: packs
# @honeydo/realtime and @honeydo/realtime-react (npm pack, which builds them
# fresh), installs the tarballs into a scratch app in a temporary directory
# (with react and the pinned peers from the registry), type-checks the app
# with tsc (strict, skipLibCheck off, NodeNext resolution), checks that
# nothing resolves into a package's src/, and runs the compiled app with
# node against a real `realtimed --dev`: whoAmI, a stream, an event through
# events(), dispose, and the React package rendered to a string.
#
#   make test-packages        (builds bin/realtimed first)
#   REALTIMED_BIN=... scripts/test-packages.sh
# Never skips: a missing binary or a failed install is a failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEB="$ROOT/web"
BIN="${REALTIMED_BIN:-$ROOT/bin/realtimed}"
[[ -x "$BIN" ]] || { echo "test-packages: no $BIN (run make build)" >&2; exit 1; }

work="$(mktemp -d)"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "test-packages: FAIL: $*" >&2; [[ -f "$work/realtimed.log" ]] && tail -20 "$work/realtimed.log" >&2; exit 1; }
step() { echo "test-packages: $*"; }

# The versions the workspace pins, so the scratch app tests what the workspace tests.
pin() { node -e 'const p=require(process.argv[1]);const n=process.argv[2];const v=(p.dependencies||{})[n]||(p.devDependencies||{})[n];if(!v)process.exit(1);console.log(n+"@"+v)' "$WEB/package.json" "$1"; }

step "packing (npm pack runs each package's prepack: a clean tsc build)"
mkdir "$work/tarballs"
(cd "$WEB" && npm pack --silent -w @honeydo/realtime -w @honeydo/realtime-react --pack-destination "$work/tarballs" >/dev/null)
core="$(ls "$work"/tarballs/honeydo-realtime-[0-9]*.tgz)"
react="$(ls "$work"/tarballs/honeydo-realtime-react-[0-9]*.tgz)"
for t in "$core" "$react"; do
  listing="$(tar -tzf "$t")"
  grep -qx 'package/dist/index.js' <<<"$listing" || fail "$t has no dist/index.js"
  grep -qx 'package/dist/index.d.ts' <<<"$listing" || fail "$t has no dist/index.d.ts"
  if grep -E '\.test\.|tsbuildinfo|/testing/' <<<"$listing"; then fail "$t ships tests or build state"; fi
done
grep -qx 'package/dist/gen/honeydo/shopping/v1/shopping_pb.js' <<<"$(tar -tzf "$core")" || fail "no generated code in $core"
step "$(basename "$core") $(du -k "$core" | cut -f1) KiB, $(basename "$react") $(du -k "$react" | cut -f1) KiB"

app="$work/app"
mkdir -p "$app/src"
cd "$app"
cat >package.json <<'EOF'
{ "name": "scratch-app", "private": true, "type": "module" }
EOF
step "installing the tarballs into $app"
npm install --no-audit --no-fund --loglevel=error "$core" "$react" \
  "$(pin @bufbuild/protobuf)" "$(pin @connectrpc/connect)" "$(pin @connectrpc/connect-web)" \
  "$(pin react)" "$(pin react-dom)" "$(pin typescript)" "$(pin @types/react)" "$(pin @types/react-dom)" \
  "$(pin @types/node)" >/dev/null
[[ -L node_modules/@honeydo/realtime ]] && fail "@honeydo/realtime is a link, not an installed copy"

cat >tsconfig.json <<'EOF'
{
  "compilerOptions": {
    "target": "ES2022",
    "lib": ["ES2022", "DOM", "DOM.Iterable"],
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "jsx": "react-jsx",
    "strict": true,
    "noUncheckedIndexedAccess": true,
    "exactOptionalPropertyTypes": true,
    "skipLibCheck": false,
    "types": ["node"],
    "rootDir": "src",
    "outDir": "out"
  },
  "include": ["src"]
}
EOF

# The framework-free client, as a Node service or a browser app uses it.
cat >src/core.ts <<'EOF'
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  devTokenProvider,
  RealtimeClient,
  STATUS_LABELS,
  statusKind,
  type RealtimeStatus,
  type ResyncReason,
} from "@honeydo/realtime";
import { RealtimeService } from "@honeydo/realtime/gen/honeydo/realtime/v1/realtime_pb";
import { ItemAddedSchema, ShoppingService } from "@honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb";

const baseUrl = process.env.BASE_URL ?? "";
const serviceKey = process.env.SERVICE_KEY ?? "";
if (baseUrl === "" || serviceKey === "") throw new Error("BASE_URL and SERVICE_KEY are required");

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
}

export async function runCore(): Promise<RealtimeClient> {
  using probe = new RealtimeClient({ baseUrl, getToken: () => null, crossTab: false });
  check(probe.getStatus().state === "idle", "a new client is idle");

  const client = new RealtimeClient({
    baseUrl,
    getToken: devTokenProvider({ baseUrl, user: "scratch", household: "scratch-home" }),
    crossTab: false,
  });
  const me = await client.whoAmI();
  check(me.userId === "scratch" && me.householdId === "scratch-home", `whoAmI: ${me.userId}/${me.householdId}`);

  const states: RealtimeStatus["state"][] = [];
  const offStatus = client.onStatusChange((s) => states.push(s.state));
  const resyncs: ResyncReason[] = [];
  client.onResync((r) => resyncs.push(r));
  const typed: string[] = [];
  client.on("itemAdded", (added) => typed.push(added.item?.name ?? "?"));

  const ac = new AbortController();
  const names: string[] = [];
  const loop = (async () => {
    for await (const event of client.events({ signal: ac.signal })) {
      if (event.payload.case === "itemAdded") names.push(event.payload.value.item?.name ?? "?");
      if (names.length === 1) ac.abort();
    }
  })();

  await until(() => client.getStatus().state === "connected", "connected");
  check(STATUS_LABELS[statusKind(client.getStatus())] === "Live", "label Live");
  check(resyncs.join() === "initial", `resyncs: ${resyncs.join()}`);

  // A backend publishes to the household, as another service would.
  const rpc = createClient(RealtimeService, createConnectTransport({ baseUrl, useBinaryFormat: true }));
  await rpc.publish(
    {
      target: { to: { case: "householdId", value: "scratch-home" } },
      event: { payload: { case: "itemAdded", value: create(ItemAddedSchema, { item: { name: "Tea" } }) } },
    },
    { headers: { Authorization: `Bearer ${serviceKey}` } },
  );
  await loop;
  check(names.join() === "Tea", `events(): ${names.join()}`);
  check(typed.join() === "Tea", `on(): ${typed.join()}`);
  check(states.includes("connected"), `statuses: ${states.join()}`);
  offStatus();

  // A module's typed client on the shared transport.
  const list = await client.service(ShoppingService).listItems({});
  check(Array.isArray(list.items), "listItems");
  return client;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
EOF

# The React package, type-checked against its declarations and rendered.
cat >src/react.tsx <<'EOF'
import type { RealtimeClient } from "@honeydo/realtime";
import {
  ConnectionStatus,
  RealtimeProvider,
  useConnectionStatus,
  useRealtimeEvent,
  type ConnectionStatusView,
} from "@honeydo/realtime-react";
import type { ReactNode } from "react";
import { renderToStaticMarkup } from "react-dom/server";

function Dot(): ReactNode {
  const view: ConnectionStatusView = useConnectionStatus({ labels: { live: "En ligne" } });
  useRealtimeEvent("itemAdded", (added) => void added.item?.name);
  return <i data-kind={view.kind}>{view.label}</i>;
}

export function renderReact(client: RealtimeClient): string {
  return renderToStaticMarkup(
    <RealtimeProvider client={client}>
      <Dot />
      <ConnectionStatus labels={{ prefix: "Verbindung: ", live: "Verbunden" }} />
      <ConnectionStatus>{(v) => <b>{v.tone}</b>}</ConnectionStatus>
    </RealtimeProvider>,
  );
}
EOF

cat >src/main.ts <<'EOF'
import { runCore } from "./core.js";
import { renderReact } from "./react.js";

const client = await runCore();
const html = renderReact(client);
for (const want of ['<i data-kind="live">En ligne</i>', 'role="status"', "Verbindung: ", "Verbunden", "<b>ok</b>"]) {
  if (!html.includes(want)) throw new Error(`rendered markup lacks ${want}: ${html}`);
}
client.dispose();
if (client.getStatus().state !== "disconnected") throw new Error("dispose did not disconnect");
console.log("scratch app: ok");
EOF

step "type-checking the scratch app (tsc strict, skipLibCheck false)"
npx tsc -p . --listFiles >"$work/files.txt" || fail "tsc"
if grep -E 'node_modules/@honeydo/[^/]+/src/' "$work/files.txt"; then fail "type-checking reached into a package's src/"; fi
grep -q 'node_modules/@honeydo/realtime/dist/index.d.ts' "$work/files.txt" || fail "@honeydo/realtime's types are not from dist/"
grep -q 'node_modules/@honeydo/realtime-react/dist/index.d.ts' "$work/files.txt" || fail "@honeydo/realtime-react's types are not from dist/"
for spec in @honeydo/realtime @honeydo/realtime/gen/honeydo/shopping/v1/shopping_pb @honeydo/realtime-react; do
  resolved="$(node --input-type=module -e "console.log(import.meta.resolve('$spec'))")"
  [[ "$resolved" == *"/node_modules/@honeydo/"*"/dist/"*".js" ]] || fail "$spec resolves to $resolved"
done

port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
key="hds_scratch_service_key_0123456789abcdef"
"$BIN" --dev --addr "127.0.0.1:$port" --data-dir "$work/data" --service-keys "scratch=$key" --log-level warn \
  >"$work/realtimed.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$port/dev/streams" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || fail "realtimed exited"
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/dev/streams" >/dev/null || fail "realtimed did not start"

step "running the compiled scratch app with node $(node --version) against realtimed on :$port"
BASE_URL="http://127.0.0.1:$port" SERVICE_KEY="$key" timeout 120 node out/main.js || fail "the scratch app failed"
step "1 passed, 0 failed"
