#!/usr/bin/env bash
# Installs what `make run` and `make test` need on a fresh machine: Go
# modules, the web packages, and (for the browser tests) Debian's Chromium.
# Usage: scripts/deps.sh [go] [web] [chromium] [tools]   (default: go web chromium)
# `tools` puts the command-line tools the README's examples use into bin/
# (grpcurl, pinned below); buf comes with the web packages.
set -euo pipefail
cd "$(dirname "$0")/.."
GRPCURL_VERSION=v1.9.4
want=("$@")
[ ${#want[@]} -eq 0 ] && want=(go web chromium)

for w in "${want[@]}"; do
  case "$w" in
  go)
    command -v go >/dev/null || { echo "deps: Go is not installed; install Go 1.26 (https://go.dev/dl)" >&2; exit 1; }
    go mod download
    ;;
  web)
    command -v npm >/dev/null || { echo "deps: npm is not installed; install Node.js 20+ and npm" >&2; exit 1; }
    # npm ci is exact and fast when node_modules already matches the lock.
    if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
      echo "deps: installing web packages (npm ci)" >&2
      (cd web && npm ci --no-audit --no-fund)
    fi
    ;;
  chromium)
    if [ ! -x /usr/bin/chromium ]; then
      if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "deps: installing Debian's chromium for the browser tests (apt-get)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
      else
        echo "deps: the browser tests need Chromium at /usr/bin/chromium." >&2
        echo "      Install it as root: apt-get install chromium chromium-driver" >&2
        exit 1
      fi
    fi
    ;;
  tools)
    # Pinned here rather than as a go.mod tool: grpcurl would add gRPC and
    # its dependencies to the module graph every importer of our packages sees.
    if [ ! -x bin/grpcurl ] || ! go version -m bin/grpcurl | grep -q "grpcurl[[:space:]]*$GRPCURL_VERSION"; then
      echo "deps: installing grpcurl $GRPCURL_VERSION into bin/" >&2
      GOBIN="$PWD/bin" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
    fi
    ;;
  *) echo "deps: unknown part $w" >&2; exit 2 ;;
  esac
done
