#!/usr/bin/env bash
# Builds the release binaries into dist/: realtimed and realtimectl for linux
# and darwin, amd64 and arm64, static (CGO_ENABLED=0), -trimpath, stamped
# with the VCS revision (--version), plus SHA256SUMS. The Dockerfile in
# deploy/ copies dist/linux-<arch>/realtimed and realtimectl (checked against
# SHA256SUMS), so the image holds exactly the binaries that
# scripts/dist-smoke.sh tested.
#
#   scripts/dist.sh                 # all four platforms
#   PLATFORMS=linux/amd64 scripts/dist.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PLATFORMS="${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}"
OUT="${OUT:-$ROOT/dist}"
rm -rf "$OUT"
mkdir -p "$OUT"
for p in $PLATFORMS; do
  os="${p%/*}" arch="${p#*/}"
  dir="$OUT/$os-$arch"
  echo "dist: building $os/$arch"
  mkdir -p "$dir"
  # -buildvcs=auto: a GOFLAGS=-buildvcs=false in the environment would
  # leave --version without its revision.
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" \
    go build -trimpath -buildvcs=auto -ldflags='-s -w' -o "$dir/" ./cmd/realtimed ./cmd/realtimectl
done
(cd "$OUT" && find . -type f ! -name SHA256SUMS | sort | xargs sha256sum > SHA256SUMS)
echo "dist: $(wc -l < "$OUT/SHA256SUMS") binaries in $OUT, checksums in $OUT/SHA256SUMS"
