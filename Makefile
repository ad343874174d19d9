# HoneyDo Realtime. `make run` and `make test` are all a newcomer needs; both
# install what they need (scripts/deps.sh).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
BUF := web/node_modules/.bin/buf
GO_TEST_FLAGS ?= -race -count=1
# A count, not a duration: with a duration Go's fuzz coordinator (go1.26)
# can fail a clean run with "context deadline exceeded" at the deadline when
# the machine is busy (go.dev/issue/75804, fixed in go1.27).
FUZZTIME ?= 30000x

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install Go modules, web packages and Chromium (as root) if missing
	scripts/deps.sh

.PHONY: generate
generate: ## regenerate gen/ and web/packages/realtime/src/gen/ from proto/
	scripts/deps.sh go web
	$(BUF) generate

.PHONY: check-generated
check-generated: generate ## fail if the committed generated code is stale
	@if [ -n "$$(git status --porcelain -- gen web/packages/realtime/src/gen)" ]; then \
	  git status --porcelain -- gen web/packages/realtime/src/gen; \
	  echo "generated code is out of date: run 'make generate' and commit" >&2; exit 1; fi
	@echo "generated code is up to date"

.PHONY: lint
lint: ## buf lint (STANDARD), buf breaking against main, go vet, gofmt
	scripts/deps.sh go web
	$(BUF) lint
	scripts/check-breaking.sh
	go vet ./...
	go mod tidy -diff
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted" >&2; exit 1; fi

.PHONY: build
build: ## build bin/realtimed and bin/realtimectl
	scripts/deps.sh go
	go build -buildvcs=auto -o bin/ ./cmd/realtimed ./cmd/realtimectl

.PHONY: tools
tools: ## put the tools the README's terminal examples use into bin/ (grpcurl; buf is in web/node_modules/.bin)
	scripts/deps.sh tools

.PHONY: test-readme
test-readme: ## run every terminal example in README.md against a fresh realtimed --dev (needs port 8080)
	scripts/readme-examples.sh

.PHONY: web
web: ## build the web demo into web/dist
	scripts/deps.sh web
	cd web && npm run build

.PHONY: run
run: build web ## start realtimed --dev with the web demo on http://127.0.0.1:8080/
	bin/realtimed --dev --web-dir web/dist

.PHONY: test
test: deps check-generated lint test-go fuzz test-dist test-deploy test-node-publisher test-web test-readme test-packages ## everything CI runs, browser tests included
	@echo "make test: all passed"

.PHONY: test-go
test-go: ## Go tests with the race detector
	go test $(GO_TEST_FLAGS) ./...

.PHONY: fuzz
fuzz: ## run each fuzz target briefly (FUZZTIME=30000x executions)
	go test -run='^$$' -fuzz='^FuzzParseCursor$$' -fuzztime=$(FUZZTIME) ./internal/broker
	go test -run='^$$' -fuzz='^FuzzVerifyToken$$' -fuzztime=$(FUZZTIME) ./internal/auth
	go test -run='^$$' -fuzz='^FuzzClean$$' -fuzztime=$(FUZZTIME) ./internal/textrule

.PHONY: test-web
test-web: build web ## TypeScript unit tests and the Chromium end-to-end tests
	go build -o bin/devcert ./scripts/devcert
	cd web && npm run typecheck && REALTIMED_BIN=$(CURDIR)/bin/realtimed npm test && REALTIMED_BIN=$(CURDIR)/bin/realtimed DEVCERT_BIN=$(CURDIR)/bin/devcert npm run e2e

.PHONY: test-packages
test-packages: build ## npm pack both web packages, install them into a scratch app outside the workspace, tsc it, run it against realtimed
	scripts/deps.sh web
	scripts/test-packages.sh

.PHONY: dist
dist: ## static release binaries for linux/darwin x amd64/arm64 in dist/, with SHA256SUMS
	scripts/deps.sh go
	scripts/dist.sh

.PHONY: test-dist
test-dist: ## build this machine's linux release binary and smoke-test it from an empty directory
	scripts/deps.sh go
	PLATFORMS=linux/$$(go env GOARCH) scripts/dist.sh
	scripts/dist-smoke.sh

.PHONY: test-node-publisher
test-node-publisher: build ## examples/node-publisher (Fastify + connect-node) against a real realtimed --dev and subscribers
	scripts/deps.sh web
	scripts/test-node-publisher.sh

.PHONY: test-deploy
test-deploy: build ## offline checks of deploy/: env names are realtimed flags', YAML parses, systemd-analyze verify if present
	scripts/test-deploy.sh

.PHONY: bench
bench: ## Go micro-benchmarks
	go test -run='^$$' -bench=. -benchmem ./internal/...

.PHONY: bench-peers
bench-peers: build ## run realtimed beside Socket.io and Centrifuge in bench/peers/run.sh (see docs/PERFORMANCE.md)
	scripts/bench-peers.sh

.PHONY: bench-cluster
bench-cluster: build ## publisher on node 1, subscribers on node 2 over NATS JetStream, beside one node (see docs/PERFORMANCE.md)
	scripts/bench-cluster.sh

.PHONY: run-cluster
run-cluster: build web ## a local NATS server and three realtimed --dev nodes on :8081-8083 (see docs/CLUSTER.md)
	scripts/run-cluster.sh

.PHONY: clean
clean: ## remove build output
	rm -rf bin web/dist web/test-results
