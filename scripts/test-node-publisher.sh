#!/usr/bin/env bash
# End-to-end test of examples/node-publisher: a real realtimed --dev, the
# Fastify example publishing with the dev service key through
# @connectrpc/connect-node and @honeydo/realtime's generated code, and
# real subscribers (realtimectl subscribe, configured by REALTIMECTL_*
# variables) that must see exactly the events meant for them.
#
#   make build && scripts/test-node-publisher.sh      (or: make test-node-publisher)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EX="$ROOT/examples/node-publisher"
for b in realtimed realtimectl; do
  [[ -x "$ROOT/bin/$b" ]] || { echo "node-publisher: no bin/$b (run make build)" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "node-publisher: FAIL: $*" >&2
  for f in "$work"/*.log "$work"/*.out; do [[ -f "$f" ]] && { echo "--- $(basename "$f")" >&2; tail -20 "$f" >&2; }; done
  exit 1
}
step() { echo "node-publisher: $*"; }
# wait_for <what> <seconds> <command...>: polls the command until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" 2>/dev/null; do
    (( SECONDS < deadline )) || fail "$what: not within ${secs}s"
    sleep 0.2
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "building @honeydo/realtime and the example"
(cd "$ROOT/web" && npx tsc -b packages/realtime)
# npm ci copies the freshly built package (install-links in .npmrc).
(cd "$EX" && npm ci --no-audit --no-fund --loglevel=error && npx tsc -p .)

port=$(free_port)
"$ROOT/bin/realtimed" --dev --addr "127.0.0.1:$port" --data-dir "$work/data" --log-format json \
  > "$work/realtimed.log" 2>&1 &
pids+=($!)
wait_for "realtimed's dev service key" 60 grep -q '"service_key"' "$work/realtimed.log"
service_key=$(grep '"service_key"' "$work/realtimed.log" | head -1 | jq -r .service_key)
step "realtimed --dev on :$port"

export REALTIMECTL_ADDR="127.0.0.1:$port" REALTIMECTL_DATA_DIR="$work/data"
subscribe() { # subscribe <user> <household> <events>
  REALTIMECTL_USER=$1 REALTIMECTL_HOUSEHOLD=$2 REALTIMECTL_MAX_EVENTS=$3 \
    "$ROOT/bin/realtimectl" subscribe > "$work/$1.out" 2> "$work/$1.log" &
  pids+=($!)
  eval "sub_$1=$!"
}
subscribe alice home 3
subscribe bob home 3
subscribe carol other 1
for u in alice bob carol; do wait_for "$u's stream" 30 grep -q "connected as $u" "$work/$u.log"; done
step "alice and bob (household home) and carol (household other) subscribed"

app_port=$(free_port)
(cd "$EX" && HONEYDO_REALTIME_URL="http://127.0.0.1:$port" HONEYDO_REALTIME_SERVICE_KEY="$service_key" \
  PORT="$app_port" exec node dist/main.js) > "$work/app.log" 2>&1 &
pids+=($!)
wait_for "the example listening" 60 grep -q "listening on" "$work/app.log"
app="http://127.0.0.1:$app_port"
step "example on :$app_port"

call() { # call <method> <path> <json> <want status> [user]
  local user=${5:-alice} code
  code=$(curl -sS -o "$work/body" -w '%{http_code}' -X "$1" "$app$2" -H 'Content-Type: application/json' \
    -H "X-User-Id: $user" -H 'X-Household-Id: home' -H 'Realtime-Origin: alice-tab-1' --data "$3")
  [[ "$code" == "$4" ]] || fail "$1 $2: HTTP $code $(cat "$work/body")"
  step "$1 $2 → $code"
}
call POST /api/items '{"name":"Oat milk"}' 201                  # household, tagged with alice's origin
call POST /api/household/notice '{"message":"Dinner at 7"}' 202   # household except alice
call PUT /api/settings/theme '{"value":"dark"}' 204              # alice's devices only
call POST /api/announcements '{"message":"Maintenance at 2"}' 202 # everyone

for u in alice bob carol; do
  pid_var="sub_$u"
  wait_for "$u's events" 30 bash -c "! kill -0 ${!pid_var}"
done
summary() { jq -c '{k: ([keys[] | select(. != "id" and . != "cursor" and . != "time" and . != "senderUserId" and . != "origin")] | .[0]), s: .senderUserId, o: .origin}' "$work/$1.out" | paste -sd' ' -; }
step "alice: $(summary alice)"
step "bob:   $(summary bob)"
step "carol: $(summary carol)"
jq -e -s 'length == 3 and .[0].itemAdded.item.name == "Oat milk" and .[0].senderUserId == "alice" and .[0].origin == "alice-tab-1"
  and .[1].settingUpdated.key == "theme" and .[1].settingUpdated.value == "dark"
  and .[2].notification.message == "Maintenance at 2"' "$work/alice.out" > /dev/null \
  || fail "alice (the actor's other device) saw: $(cat "$work/alice.out")"
jq -e -s 'length == 3 and .[0].itemAdded.item.name == "Oat milk" and .[1].notification.message == "Dinner at 7"
  and .[1].senderUserId == "alice" and .[2].notification.message == "Maintenance at 2"' "$work/bob.out" > /dev/null \
  || fail "bob saw: $(cat "$work/bob.out")"
jq -e -s 'length == 1 and .[0].notification.message == "Maintenance at 2"' "$work/carol.out" > /dev/null \
  || fail "carol (another household) saw: $(cat "$work/carol.out")"

# A bad service key is refused, and the route says so instead of claiming success.
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
(cd "$EX" && HONEYDO_REALTIME_URL="http://127.0.0.1:$port" HONEYDO_REALTIME_SERVICE_KEY="hds_not_a_key_$(printf 'x%.0s' {1..40})" \
  PORT="$app_port" exec node dist/main.js) > "$work/app.log" 2>&1 &
pids+=($!)
wait_for "the example listening again" 60 grep -q "listening on" "$work/app.log"
call POST /api/announcements '{"message":"nope"}' 500
echo "node-publisher: passed"
