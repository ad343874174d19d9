#!/usr/bin/env bash
# bench-cluster.sh — realtimed across nodes: the publisher on node 1, the
# subscribers on node 2, over NATS JetStream, beside the same workload with
# publisher and subscribers both on node 1 (same JetStream backend). Prints a
# markdown table (deliveries/s, p50, p99, lost, server µs per delivery) and
# keeps the raw RESULT lines. See docs/PERFORMANCE.md ("Reproducing") and
# docs/CLUSTER.md ("Performance").
#
#   scripts/bench-cluster.sh                                   # = make bench-cluster: W4 and W2s, REPS=1
#   REPS=3 scripts/bench-cluster.sh                            # medians of three
#   W4_ARGS="--conns 500 --rate 500 --duration-ms 3000" WORKLOADS=w4 scripts/bench-cluster.sh   # a quick check
#   scripts/bench-cluster.sh --report $WORK/results/<stamp>/raw.jsonl   # re-print a table
#
# Every run (workload x mode x rep) starts afresh: a nats-server with
# JetStream on a new store directory, then two `realtimed --dev --bench-api
# --log-level warn --nats-url …` nodes on free loopback ports, sharing one
# --data-dir (one dev key, so the generator's tokens work on both), then one
# `realtimectl bench`:
#
#   single  --addr node1                        (publisher and subscribers on node 1)
#   cross   --addr node2 --publish-addr node1   (publisher node 1, subscribers node 2)
#
# Both nodes run in both modes, so the only difference is where the
# subscribers are. The server publishes with PUBLISHERS (4) concurrent
# publishers sharing the rate: a JetStream publish waits for its ack, and one
# publisher alone offers only a few thousand events/s (see "published/s"). Server CPU per delivery is node 1's in "single" and node 1
# plus node 2 in "cross" (servers_us_per_delivery; the publishing node's
# share beside it); the nats-server's CPU is in neither.
#
# Environment: WORKLOADS ("w4 w2s"), MODES ("single cross"), REPS (1), PUBLISHERS (4),
# W4_ARGS, W2S_ARGS and COMMON_ARGS (defaults as bench/peers/run.sh),
# OURS_ARGS (extra generator flags, e.g. --h2c), SERVER_ARGS (extra realtimed
# flags), SERVER_CPU (0: taskset list for nats-server and both nodes),
# CLIENT_CPU (1: for the generator; empty: no pinning), WORK
# (/tmp/cluster-bench: binaries and results, outside the repository), OUT
# ($WORK/results/<stamp>), RUN_TIMEOUT (600 s per generator run).
# The open-file limit is raised to the hard limit: node 2 and the generator
# each hold one socket per subscriber.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# report FILE... prints the table of raw RESULT lines (one JSON object a
# line, with "mode" and "rep" added): per workload and mode, the median of
# the reps (the lower middle one for an even count; lost: their sum).
report() {
  jq -rs '
    def med: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
    def fmt(d): if . == null then "–" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
    def commas: if length > 3 then (.[:-3] | commas) + "," + .[-3:] else . end;
    def kfmt: if . == null then "–" else (round | tostring | commas) end;
    "| workload | mode | reps | deliveries/s | p50 ms | p99 ms | lost | published/s | server µs/deliv (all nodes) | of which publishing node |",
    "|---|---|---|---|---|---|---|---|---|---|",
    (group_by([.workload, .mode]) | sort_by(.[0].workload, (.[0].mode | if . == "single" then 0 else 1 end)) | .[] |
      "| \(.[0].workload) | \(.[0].mode) | \(length) | \([.[].deliveries_per_s // empty] | med | kfmt) | " +
      "\([.[].p50_ms // empty] | med | fmt(3)) | \([.[].p99_ms // empty] | med | fmt(3)) | \([.[].lost] | add) | " +
      "\([.[].publish_rate // empty] | med | kfmt) | " +
      "\([.[] | (.servers_us_per_delivery // .server_us_per_delivery) // empty] | med | fmt(1)) | " +
      "\([.[].publish_server_us_per_delivery // empty] | med | fmt(1)) |")
  ' "$@"
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --report) shift; report "$@"; exit 0 ;;
  "") ;;
  *) echo "bench-cluster: unknown argument $1 (see --help)" >&2; exit 2 ;;
esac
command -v jq >/dev/null || { echo "bench-cluster: needs jq" >&2; exit 1; }

WORKLOADS="${WORKLOADS:-w4 w2s}"
MODES="${MODES:-single cross}"
REPS="${REPS:-1}"
COMMON_ARGS="${COMMON_ARGS:---size 200 --household-size 4}"
W2S_ARGS="${W2S_ARGS:---conns 1000 --rate 50 --duration-ms 10000}"
W4_ARGS="${W4_ARGS:---conns 5000 --rate 5000 --duration-ms 10000}"
PUBLISHERS="${PUBLISHERS:-4}"
OURS_ARGS="${OURS_ARGS:-}"
SERVER_ARGS="${SERVER_ARGS:-}"
SERVER_CPU="${SERVER_CPU-0}"
CLIENT_CPU="${CLIENT_CPU-1}"
WORK="${WORK:-/tmp/cluster-bench}"
OUT="${OUT:-$WORK/results/$(date +%Y%m%d-%H%M%S)}"
RUN_TIMEOUT="${RUN_TIMEOUT:-600}"
BIN="$WORK/bin"
DATA="$WORK/realtimed-data.$$"   # a fresh dev key per invocation

log() { printf '[bench-cluster] %s\n' "$*" >&2; }

wl_base() { case "$1" in w2s) echo w2 ;; *) echo "$1" ;; esac; }
wl_args() {
  case "$1" in
    w2s) echo "$W2S_ARGS" ;; w4) echo "$W4_ARGS" ;;
    *) echo "bench-cluster: workload $1: only w4 and w2s (set WORKLOADS)" >&2; return 1 ;;
  esac
}
for wl in $WORKLOADS; do wl_args "$wl" >/dev/null || exit 2; done
for mode in $MODES; do
  case "$mode" in single|cross) ;; *) echo "bench-cluster: mode $mode: single or cross (set MODES)" >&2; exit 2 ;; esac
done

pin() { # cpu-list command...: run the command pinned when the list is set
  local cpus=$1; shift
  if [[ -n "$cpus" ]]; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi
}

# ---- environment ----
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "open files limit: $(ulimit -n) per process (node 2 and the generator hold one socket per subscriber)"
mkdir -p "$BIN" "$DATA" "$OUT/logs"

# ---- build (outside the repository) ----
cd "$ROOT"
log "building realtimed, realtimectl and nats-server into $BIN"
go build -o "$BIN/" ./cmd/realtimed ./cmd/realtimectl
go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2
{
  echo "date: $(date -Is)"; echo "kernel: $(uname -r)"; echo "cpus: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo || true; echo "go: $(go version)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "nats-server: $("$BIN/nats-server" --version)"
  echo "pinning: servers [$SERVER_CPU] generator [$CLIENT_CPU]"
  echo "args: PUBLISHERS=$PUBLISHERS COMMON=[$COMMON_ARGS] W2S=[$W2S_ARGS] W4=[$W4_ARGS] OURS=[$OURS_ARGS] SERVER=[$SERVER_ARGS]"
} > "$OUT/env.txt"

# ---- one run's processes ----
pids=()   # nats-server, node 1, node 2 of the current run
stop_all() {
  local i pid
  # The nodes first (they end their streams), NATS once they are gone.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
LOADGEN_PID=
cleanup() {
  trap - EXIT INT TERM
  if [[ -n "$LOADGEN_PID" ]]; then # timeout passes the signal on to the generator
    kill -TERM "$LOADGEN_PID" 2>/dev/null || true
    wait "$LOADGEN_PID" 2>/dev/null || true
  fi
  stop_all
  rm -rf "$DATA" "$WORK/nats-store.$$"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# free_port VAR sets VAR to a loopback port nothing listens on (below the
# usual ephemeral range) and that this run has not handed out. Another
# program may take it before ours does: wait_node checks the pid that
# answers.
taken=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    [[ "$taken" == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then taken+="$p "; printf -v "$1" '%s' "$p"; return 0; fi
  done
  log "no free port"; return 1
}
wait_port() { # port pid what
  for _ in $(seq 1 150); do
    kill -0 "$2" 2>/dev/null || { log "$3 exited; see $OUT/logs"; return 1; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$3 did not open 127.0.0.1:$1"; return 1
}
wait_node() { # port pid what: ready, and the process on the port is ours
  local info
  for _ in $(seq 1 150); do
    kill -0 "$2" 2>/dev/null || { log "$3 exited; see $OUT/logs"; return 1; }
    if info=$(curl -sf "http://127.0.0.1:$1/bench/info" 2>/dev/null); then
      [[ "$(jq -r .pid <<<"$info")" == "$2" ]] && return 0
      log "$3: another process answers on port $1"; return 1
    fi
    sleep 0.1
  done
  log "$3 did not answer on 127.0.0.1:$1"; return 1
}

# start_cluster TAG: nats-server on a fresh store, then node 1 (it creates
# the stream), then node 2. Sets NODE1_PORT NODE2_PORT NODE1_PID NODE2_PID.
start_cluster() {
  local tag=$1 nats_port store
  taken=" "
  free_port nats_port && free_port NODE1_PORT && free_port NODE2_PORT || return 1
  store="$WORK/nats-store.$$"
  rm -rf "$store"; mkdir -p "$store"
  (pin "$SERVER_CPU" "$BIN/nats-server" --jetstream --store_dir "$store" --addr 127.0.0.1 --port "$nats_port" \
    --server_name bench-cluster) > "$OUT/logs/$tag.nats.log" 2>&1 &
  pids+=($!)
  wait_port "$nats_port" "${pids[0]}" nats-server || return 1
  local i port
  for i in 1 2; do
    port=$NODE1_PORT; [[ $i == 2 ]] && port=$NODE2_PORT
    # shellcheck disable=SC2086
    (cd "$WORK" && pin "$SERVER_CPU" "$BIN/realtimed" --dev --bench-api --log-level warn --addr "127.0.0.1:$port" \
      --data-dir "$DATA" --nats-url "nats://127.0.0.1:$nats_port" $SERVER_ARGS) > "$OUT/logs/$tag.node$i.log" 2>&1 &
    pids+=($!)
    wait_node "$port" "${pids[i]}" "node $i" || return 1
  done
  NODE1_PID=${pids[1]} NODE2_PID=${pids[2]}
}

RAW="$OUT/raw.jsonl"
: > "$RAW"
log "WORKLOADS=[$WORKLOADS] MODES=[$MODES] REPS=$REPS; results in $OUT"
for wl in $WORKLOADS; do
  base=$(wl_base "$wl"); args=$(wl_args "$wl")
  for mode in $MODES; do
    for rep in $(seq 1 "$REPS"); do
      tag="$wl-$mode-$rep"
      if ! start_cluster "$tag"; then
        log "[$tag] cluster did not start; skipped"; stop_all; continue
      fi
      if [[ $mode == single ]]; then
        where=(--addr "http://127.0.0.1:$NODE1_PORT" --server-pid "$NODE1_PID")
      else
        where=(--addr "http://127.0.0.1:$NODE2_PORT" --server-pid "$NODE2_PID"
          --publish-addr "http://127.0.0.1:$NODE1_PORT" --publish-server-pid "$NODE1_PID")
      fi
      log "[$tag] nodes :$NODE1_PORT (pid $NODE1_PID) and :$NODE2_PORT (pid $NODE2_PID); bench $args"
      # In the background and waited for, so that Ctrl-C reaches the
      # trap at once. The RESULT line goes straight to a file; progress
      # (stderr) to the log and, prefixed, to the terminal.
      # shellcheck disable=SC2086
      (pin "$CLIENT_CPU" timeout -k 10 "$RUN_TIMEOUT" "$BIN/realtimectl" bench --workload "$base" --name "$wl" \
        --data-dir "$DATA" --progress 2s --publishers "$PUBLISHERS" "${where[@]}" $COMMON_ARGS $args $OURS_ARGS) \
        > "$OUT/logs/$tag.result" 2> >(tee "$OUT/logs/$tag.loadgen.log" | sed -u 's/^/    /' >&2) &
      LOADGEN_PID=$!
      rc=0
      wait "$LOADGEN_PID" || rc=$?
      LOADGEN_PID=
      stop_all
      rm -rf "$WORK/nats-store.$$"
      line=$(grep -m1 '^RESULT ' "$OUT/logs/$tag.result" | sed 's/^RESULT //' || true)
      if [[ -z "$line" ]]; then
        log "[$tag] no RESULT (rc=$rc); tail of $OUT/logs/$tag.loadgen.log:"; tail -5 "$OUT/logs/$tag.loadgen.log" >&2
        continue
      fi
      jq -c --arg mode "$mode" --argjson rep "$rep" '. + {mode: $mode, rep: $rep}' <<<"$line" >> "$RAW"
      jq -c '{deliveries_per_s, p50_ms, p99_ms, lost, publish_rate, server_us_per_delivery, servers_us_per_delivery}
        | with_entries(select(.value != null))' <<<"$line" | sed "s/^/[$tag] /" >&2
      sleep 2 # let the sockets close
    done
  done
done

echo
report "$RAW"
echo
echo "raw results: $RAW (env: $OUT/env.txt, logs: $OUT/logs/)"
