#!/usr/bin/env bash
# Smoke test of a release binary: runs dist/linux-<arch>/realtimed from an
# empty directory, configured only by environment variables, as a container
# or a systemd unit would run it, and checks what a deployment relies on:
# --version, health, a refused caller, a Clerk-style RS256 token verified
# against CLERK_JWT_KEY (networkless), Publish with a service key, and a
# clean exit on SIGTERM.
#
#   scripts/dist.sh && scripts/dist-smoke.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
arch="$(go env GOARCH)"
BIN="${BIN:-$ROOT/dist/linux-$arch/realtimed}"
CTL="${CTL:-$(dirname "$BIN")/realtimectl}"
[[ -x "$BIN" ]] || { echo "dist-smoke: no $BIN (run scripts/dist.sh)" >&2; exit 1; }
[[ -x "$CTL" ]] || { echo "dist-smoke: no $CTL (run scripts/dist.sh)" >&2; exit 1; }

work="$(mktemp -d)"
pid=""
cleanup() { [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "dist-smoke: FAIL: $*" >&2; [[ -f "$work/log" ]] && tail -20 "$work/log" >&2; exit 1; }
step() { echo "dist-smoke: $*"; }

cp "$BIN" "$work/realtimed"
cp "$CTL" "$work/realtimectl"
mkdir "$work/run"
cd "$work/run"     # empty: nothing but what the environment says

step "$("$work/realtimed" --version)"
"$work/realtimed" --version | grep -q '^realtimed ' || fail "--version"
file "$work/realtimed" 2>/dev/null | grep -q 'statically linked' || fail "not a static binary: $(file "$work/realtimed")"

# A Clerk-style key pair: the server gets only the public half, as with
# CLERK_JWT_KEY from the Clerk dashboard.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/key.pem" 2>/dev/null
openssl pkey -in "$work/key.pem" -pubout -out "$work/pub.pem"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
header=$(printf '{"alg":"RS256","typ":"JWT","kid":"ins_smoke"}' | b64url)
claims=$(printf '{"sub":"user_smoke","sid":"sess_smoke","iss":"https://smoke.clerk.accounts.dev","iat":%d,"nbf":%d,"exp":%d,"o":{"id":"org_smoke"},"v":2}' \
  $((now - 5)) $((now - 5)) $((now + 300)) | b64url)
sig=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign "$work/key.pem" -binary | b64url)
token="$header.$claims.$sig"
service_key="hds_$(openssl rand -hex 24)"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
env -i PATH=/usr/bin:/bin HOME="$work/run" \
  REALTIMED_ADDR="127.0.0.1:$port" \
  CLERK_JWT_KEY="$(cat "$work/pub.pem")" \
  REALTIMED_SERVICE_KEYS="smoke=$service_key" \
  REALTIMED_LOG_FORMAT=json \
  "$work/realtimed" > "$work/log" 2>&1 &
pid=$!

rpc() { # rpc <procedure> <json> [authorization]
  local auth=()
  [[ -n "${3:-}" ]] && auth=(-H "Authorization: Bearer $3")
  curl -sS -o "$work/body" -w '%{http_code}' -X POST "$url/$1" \
    -H 'Content-Type: application/json' "${auth[@]}" --data "$2"
}
for _ in $(seq 1 100); do
  code=$(rpc grpc.health.v1.Health/Check '{}' 2>/dev/null || true)
  [[ "$code" == 200 ]] && break
  kill -0 "$pid" 2>/dev/null || fail "realtimed exited"
  sleep 0.2
done
[[ "$code" == 200 ]] || fail "health check never answered"
grep -q SERVING "$work/body" || fail "health: $(cat "$work/body")"
step "health: $(cat "$work/body")"

for probe in healthz readyz; do
  code=$(curl -sS -o "$work/body" -w '%{http_code}' "$url/$probe")
  [[ "$code" == 200 ]] || fail "/$probe: $code $(cat "$work/body")"
  step "/$probe: $code $(cat "$work/body")"
done

# realtimectl from the same release, configured by REALTIMECTL_* only: the
# container's HEALTHCHECK, and a call with the Clerk-style token.
ctl() { env -i PATH=/usr/bin:/bin HOME="$work/run" REALTIMECTL_ADDR="127.0.0.1:$port" "$@"; }
out=$(ctl REALTIMECTL_READY=true REALTIMECTL_TIMEOUT=5s "$work/realtimectl" health) || fail "realtimectl health: $out"
step "realtimectl health: $out"
out=$(ctl REALTIMECTL_TOKEN="$token" "$work/realtimectl" whoami 2>&1) || fail "realtimectl whoami: $out"
jq -e '.userId == "user_smoke"' <<<"$out" > /dev/null || fail "realtimectl whoami: $out"
step "realtimectl whoami with REALTIMECTL_TOKEN: $(jq -c . <<<"$out")"

code=$(rpc honeydo.realtime.v1.RealtimeService/Ping '{}')
[[ "$code" == 401 ]] && grep -q unauthenticated "$work/body" || fail "Ping without a token: $code $(cat "$work/body")"
step "Ping without a token: $code $(jq -c . "$work/body")"

code=$(rpc honeydo.realtime.v1.RealtimeService/WhoAmI '{}' "$token")
[[ "$code" == 200 ]] || fail "WhoAmI: $code $(cat "$work/body")"
jq -e '.userId == "user_smoke" and .householdId == "org_smoke"' "$work/body" > /dev/null || fail "WhoAmI: $(cat "$work/body")"
step "WhoAmI with an RS256 token: $(jq -c . "$work/body")"

code=$(rpc honeydo.realtime.v1.RealtimeService/Publish \
  '{"target":{"householdId":"org_smoke"},"event":{"notification":{"message":"smoke"}}}' "$service_key")
[[ "$code" == 200 ]] || fail "Publish with the service key: $code $(cat "$work/body")"
step "Publish with a service key: $(jq -c . "$work/body")"

kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "still running 10 s after SIGTERM"
wait "$pid" && status=0 || status=$?
pid=""
[[ "$status" == 0 ]] || fail "exit status $status after SIGTERM"
step "SIGTERM: exit 0"
[[ -z "$(ls -A "$work/run")" ]] || fail "wrote into its working directory (no module runs, so not even .data): $(ls -A "$work/run")"
echo "dist-smoke: passed"
