#!/usr/bin/env bash
# run-cluster.sh — a local HoneyDo Realtime cluster: one nats-server with
# JetStream and three `realtimed --dev` nodes on 127.0.0.1:8081-8083, all on
# the same stream. Ctrl-C stops everything (the nodes end their streams with
# UNAVAILABLE, as in production). See docs/CLUSTER.md.
#
# nats-server is built from the Go module pinned in go.mod into bin/ (it is
# not assumed to be installed). The three nodes share one --data-dir: one dev
# signing key, so a token minted on any node works on every node, and one
# SQLite file for the shopping module (WAL mode and a busy timeout make that
# safe across processes), so every node shows the same list.
#
# Environment: NATS_PORT (4222), BASE_PORT (8081: nodes on BASE_PORT..+2),
# CLUSTER_DIR (.data/cluster), and any REALTIMED_* variable for the nodes.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_PORT=${NATS_PORT:-4222}
BASE_PORT=${BASE_PORT:-8081}
DIR=${CLUSTER_DIR:-.data/cluster}
mkdir -p bin "$DIR/nats" "$DIR/realtimed"

log() { printf '\033[1m[run-cluster]\033[0m %s\n' "$*" >&2; }

nats_version=$(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
if [[ ! -x bin/nats-server ]] || [[ "$(bin/nats-server --version 2>/dev/null)" != *"${nats_version}"* ]]; then
  log "building nats-server ${nats_version} into bin/ (from the Go module in go.mod)"
  go build -o bin/nats-server github.com/nats-io/nats-server/v2
fi
if [[ ! -x bin/realtimed ]] || [[ -n "$(find cmd internal gen -name '*.go' -newer bin/realtimed -print -quit)" ]]; then
  log "building bin/realtimed"
  go build -o bin/ ./cmd/realtimed
fi

pids=()
cleanup() {
  trap - EXIT INT TERM
  log "stopping"
  # realtimed nodes first (they end their streams), NATS once they are gone.
  for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
  if ((${#pids[@]})); then kill -TERM "${pids[0]}" 2>/dev/null || true; fi
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_port() { # host port what
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$3 did not open $1:$2 — see the log above"; exit 1
}

bin/nats-server --jetstream --store_dir "$DIR/nats" --addr 127.0.0.1 --port "$NATS_PORT" \
  --server_name honeydo-local > >(sed -u 's/^/[nats] /') 2>&1 &
pids+=($!)
wait_port 127.0.0.1 "$NATS_PORT" nats-server
log "nats-server on nats://127.0.0.1:${NATS_PORT} (JetStream store: $DIR/nats)"

export REALTIMED_NATS_URL=${REALTIMED_NATS_URL:-nats://127.0.0.1:${NATS_PORT}}
for i in 0 1 2; do
  port=$((BASE_PORT + i))
  # One node at a time: the first one creates the dev key and the stream.
  bin/realtimed --dev --addr "127.0.0.1:${port}" --data-dir "$DIR/realtimed" \
    > >(sed -u "s/^/[rt$((i + 1))] /") 2>&1 &
  pids+=($!)
  wait_port 127.0.0.1 "$port" "realtimed node $((i + 1))"
done

cat >&2 <<EOF

  Three realtimed nodes on one JetStream stream:
    http://127.0.0.1:${BASE_PORT}/  http://127.0.0.1:$((BASE_PORT + 1))/  http://127.0.0.1:$((BASE_PORT + 2))/
  Open the demo on two different nodes and add items: they appear on both.
  A token from any node works on all of them, e.g.
    curl -s 'http://127.0.0.1:$((BASE_PORT + 1))/dev/token?user=alice&household=home'
  Kill one node (kill <pid>) and the clients on it resume on another node.
  Ctrl-C stops everything.

EOF

# Stop everything when any process exits.
wait -n
log "a process exited"
