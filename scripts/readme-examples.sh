#!/usr/bin/env bash
# Runs every terminal example (each ```sh block) of README.md, as written,
# against a fresh `realtimed --dev`, and checks its output. CI runs it
# (`make test-readme`) so the README cannot drift from the binaries.
#
# The blocks run in order in ONE bash session (`set -euo pipefail`), so a
# variable set in one block (TOKEN=...) is there in the next, as in a
# reader's terminal. Each block's stdout and stderr go to its own log.
# Markers, invisible on GitHub, say what a reader would see or do:
#
#   <!-- readme-examples: skip REASON -->    before a block: not run here
#                                           (REASON is required: say why)
#   <!-- readme-examples: expect REGEX -->   after a block: its output must
#                                           match REGEX (grep -E) within 60 s
#   ... # runs until Ctrl-C                 at the end of a command: it runs
#                                           in the background; the next command
#                                           waits until it has printed something
#                                           (as a reader waits to see it start),
#                                           and it gets SIGINT once the block's
#                                           expectations hold
#
# Usage: scripts/readme-examples.sh [README.md]
# Needs port 8080 free (the README's examples name it). Set KEEP_LOGS=1 to
# keep the logs directory.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
README=${1:-$ROOT/README.md}
cd "$ROOT"

log() { printf 'readme-examples: %s\n' "$*" >&2; }

if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
  log "port 8080 is in use; the README's examples need it (stop 'make run' or whatever holds it)"
  exit 1
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ "${KEEP_LOGS:-}" = 1 ]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Turn the README into a script: block bodies verbatim, wrapped in calls to
# the helpers defined in the prelude below.
awk -v work="$WORK" '
  function q(s) { gsub(/\047/, "\047\\\047\047", s); return "\047" s "\047" }
  /^<!-- readme-examples: skip / {
    if ($0 !~ /skip [^ ].*-->/) { print "README marker without a reason at line " NR > "/dev/stderr"; exit 2 }
    skip = 1; next
  }
  /^<!-- readme-examples: expect / {
    if (last == 0) { print "expect marker before any block at line " NR > "/dev/stderr"; exit 2 }
    re = $0; sub(/^<!-- readme-examples: expect /, "", re); sub(/ -->[ \t]*$/, "", re)
    print "__expect " last " " q(re); next
  }
  !inblock && /^```sh[ \t]*$/ {
    inblock = 1; n++; startline = NR
    if (skip) { skipping = 1; skip = 0; print "__skipped " n " " NR; next }
    skipping = 0; print "__check_block " last; last = n
    print "__begin " n " " NR; print "{"; next
  }
  inblock && /^```[ \t]*$/ {
    inblock = 0
    if (!skipping) { print "} >>\"" work "/block-" n ".log\" 2>&1"; print "__ran " n }
    next
  }
  inblock && skipping { next }
  inblock {
    line = $0
    if (!cont && line !~ /^[ \t]*(#.*)?$/) print "__mark"
    cont = (line ~ /\\$/)
    if (line ~ /# runs until Ctrl-C/) {
      sub(/[ \t]*# runs until Ctrl-C.*$/, "", line)
      line = line " & __bg+=($!); __started"
    }
    print line; next
  }
  /^```/ { skip = 0 }
  END {
    if (inblock) { print "unterminated code block from line " startline > "/dev/stderr"; exit 2 }
    print "__check_block " last
    print "__done " n
  }
' "$README" >"$WORK/examples.sh"

cat >"$WORK/prelude.sh" <<'EOF'
set -euo pipefail
# Job control: a non-interactive shell starts background commands with
# SIGINT ignored, and "Ctrl-C" would not reach them.
set -m
__bg=()
__expects=()
__current=0
__begin() { __current=$1; __bg=(); __expects=(); printf 'readme-examples: block %s (README line %s)\n' "$1" "$2" >&2; }
__skipped() { printf 'readme-examples: block %s (README line %s) skipped (marked in the README)\n' "$1" "$2" >&2; }
__ran() { :; }
__logsize() { wc -c <"$__WORK/block-$__current.log" 2>/dev/null || echo 0; }
__mark() { __mark_size=$(__logsize); }
__started() {
  local deadline=$((SECONDS + 60))
  until [ "$(__logsize)" -gt "$__mark_size" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then __fail "a command that runs until Ctrl-C printed nothing within 60 s"; fi
    sleep 0.2
  done
}
__expect() { __expects+=("$2"); }
__fail() {
  printf 'readme-examples: block %s: %s\n--- its output ---\n' "$__current" "$1" >&2
  cat "$__WORK/block-$__current.log" >&2 || true
  exit 1
}
# Runs after a block and the expect markers that follow it.
__check_block() {
  [ "${1:-0}" = 0 ] && return 0
  local re deadline
  deadline=$((SECONDS + 60))
  for re in "${__expects[@]}"; do
    until grep -Eq -- "$re" "$__WORK/block-$1.log"; do
      if [ "$SECONDS" -ge "$deadline" ]; then __fail "no output matching /$re/ within 60 s"; fi
      sleep 0.2
    done
  done
  local pid
  for pid in "${__bg[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${__bg[@]}"; do wait "$pid" 2>/dev/null || true; done
  __bg=(); __expects=()
}
__done() { printf 'readme-examples: all %s blocks passed\n' "$1" >&2; }
trap '__fail "a command failed (exit $?)"' ERR
# A failed block must not leave its background commands running.
trap 'for __pid in "${__bg[@]}"; do kill -TERM "$__pid" 2>/dev/null || true; done' EXIT
EOF

# The examples assume what the README tells a reader to have done first.
log "building bin/ (make build tools) and the web packages"
make -s build tools >&2
scripts/deps.sh web >/dev/null
export PATH="$ROOT/bin:$ROOT/web/node_modules/.bin:$PATH"

log "starting a fresh realtimed --dev on 127.0.0.1:8080 (log: $WORK/realtimed.log)"
bin/realtimed --dev >"$WORK/realtimed.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
  curl -fsS -o /dev/null http://127.0.0.1:8080/readyz 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/realtimed.log" >&2; log "realtimed exited"; exit 1; }
  sleep 0.1
done
curl -fsS -o /dev/null http://127.0.0.1:8080/readyz || { log "realtimed not ready after 60 s"; exit 1; }

(cd "$ROOT" && __WORK="$WORK" bash -c 'source "$__WORK/prelude.sh"; source "$__WORK/examples.sh"')
