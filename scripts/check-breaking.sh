#!/usr/bin/env bash
# Runs `buf breaking` against the proto on main: on a branch, main itself;
# on main, the commit before (so a change that lands on main is checked
# against what main had). Skips, saying why, when there is nothing to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
buf=web/node_modules/.bin/buf
branch=$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo "")
if [ "$branch" != "main" ] && git rev-parse --verify -q main >/dev/null; then
  ref=main
else
  ref=$(git rev-parse -q --verify HEAD~1 2>/dev/null || true)
fi
if [ -z "$ref" ]; then
  echo "buf breaking: no earlier commit to compare with (shallow clone or first commit); skipped"
  exit 0
fi
if ! git cat-file -e "$ref:proto" 2>/dev/null; then
  echo "buf breaking: $ref has no proto/ yet; nothing to compare"
  exit 0
fi
echo "buf breaking: against $ref"
"$buf" breaking --against ".git#ref=$ref,subdir=."
