#!/usr/bin/env bash
# Runs realtimed beside the peers (Socket.io, Centrifuge) in ONE invocation of
# bench/peers/run.sh, as its "custom" peer, so every row of the table
# shares the same machine state. See docs/PERFORMANCE.md.
#
#   scripts/bench-peers.sh                                  # ours + centrifuge-ws-raw + socketio, W1..W4, REPS=1
#   REPS=3 scripts/bench-peers.sh                           # the full medians
#   PEERS="socketio centrifuge-ws centrifuge-sse centrifuge-ws-raw" REPS=3 scripts/bench-peers.sh   # every peer
#   WORKLOADS="w2s w4" PEERS= scripts/bench-peers.sh        # ours only, two workloads
#   OURS_ARGS="--h2c" OURS_LABEL=realtimed-h2c scripts/bench-peers.sh   # our h2c variant
#   TLS=1 PEERS= WORKLOADS="w1 w4" scripts/bench-peers.sh  # browsers straight to realtimed over TLS (label realtimed-tls)
#   NICE=-20 scripts/bench-peers.sh                         # on a shared box (root): every peer at the same priority
#
# Environment: PEERS (peer labels of run.sh besides ours; default
# "centrifuge-ws-raw socketio"), WORKLOADS, REPS (default 1), PORT, WORK,
# PEERS_DIR (default bench/peers), OURS_ARGS (extra flags for our
# generator: --h2c, --protocol grpc, ...), OURS_LABEL, SERVER_ARGS (extra
# realtimed flags), NICE, TLS, and everything run.sh reads (W2_ARGS, ...).
#
# TLS=1: realtimed serves HTTPS (HTTP/2 by ALPN) with a throwaway
# self-signed certificate for 127.0.0.1, made under $WORK by
# scripts/devcert and removed at exit, and the generator connects to
# https://127.0.0.1:{PORT} trusting it with --ca-file: every subscriber
# has a TLS connection of its own with one HTTP/2 stream, as a browser tab
# talking straight to realtimed (RESULT tls_conns counts them; the label
# defaults to realtimed-tls). --h2c and --streams-per-conn do not apply.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/bench/peers}"
WORK="${WORK:-/tmp/peers-bench}"
BIN="$WORK/realtimed-bin"
DATA="$WORK/realtimed-data.$$"       # a fresh dev key per invocation
export REPS="${REPS:-1}"
PEERS="${PEERS-centrifuge-ws-raw socketio}"
OURS_ARGS="${OURS_ARGS:-}"
TLS="${TLS:-0}"
CERTS="$WORK/realtimed-tls.$$"       # TLS=1: a fresh certificate per invocation
OURS_LABEL="${OURS_LABEL:-}"
SERVER_ARGS="${SERVER_ARGS:-}"

[[ -x "$PEERS_DIR/run.sh" ]] || { echo "bench-peers: no run.sh in $PEERS_DIR (set PEERS_DIR)" >&2; exit 1; }
[[ "$TLS" == 0 || "$TLS" == 1 ]] || { echo "bench-peers: TLS must be 0 or 1, not $TLS" >&2; exit 1; }
mkdir -p "$BIN" "$DATA"
trap 'rm -rf "$DATA" "$CERTS"' EXIT

# ---- build (outside the repository) ----
cd "$ROOT"
go build -o "$BIN/realtimed" ./cmd/realtimed
go build -o "$BIN/realtimectl" ./cmd/realtimectl
LOADGEN="$BIN/realtimectl bench"

SCHEME=http SERVER_TLS="" LOADGEN_TLS=""
if [[ "$TLS" == 1 ]]; then
  go build -o "$BIN/devcert" ./scripts/devcert
  mkdir -p "$CERTS"
  "$BIN/devcert" --dir "$CERTS" --hosts 127.0.0.1 >/dev/null
  SCHEME=https
  SERVER_TLS="--tls-cert $CERTS/cert.pem --tls-key $CERTS/key.pem"
  LOADGEN_TLS="--ca-file $CERTS/cert.pem"
  export CUSTOM_READY_CMD="curl -sf --cacert $CERTS/cert.pem https://127.0.0.1:{PORT}/bench/info"
fi

label=()
[[ -n "$OURS_LABEL" ]] && label=(--label "$OURS_LABEL")
# run.sh word-splits these commands and substitutes {PORT}; keep paths free of spaces.
export CUSTOM_SERVER_CMD="$BIN/realtimed --dev --bench-api --addr 127.0.0.1:{PORT} --data-dir $DATA --log-level warn $SERVER_TLS $SERVER_ARGS"
export CUSTOM_LOADGEN_CMD="$LOADGEN --addr $SCHEME://127.0.0.1:{PORT} --data-dir $DATA $LOADGEN_TLS ${label[*]:-} $OURS_ARGS"
export PEERS="${PEERS:+$PEERS }custom"
echo "bench-peers: PEERS=[$PEERS] REPS=$REPS"
echo "  server:  $CUSTOM_SERVER_CMD"
echo "  loadgen: $CUSTOM_LOADGEN_CMD"

cd "$WORK"    # realtimed --dev serves ./web/dist if present: not here
if [[ -n "${NICE:-}" ]]; then
  nice -n "$NICE" "$PEERS_DIR/run.sh"
else
  "$PEERS_DIR/run.sh"
fi
