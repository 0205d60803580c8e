# Switchboard. `make run` serves on a private PostgreSQL; `make test` runs
# every test against the machine's PostgreSQL and RabbitMQ and headless
# Chromium.
GO        ?= go
BIN       := bin/switchboard
TEMPL     := $(shell $(GO) env GOPATH)/bin/templ
TEMPL_VER := v0.3.977

.PHONY: all build run test test-deps test-short bench fuzz generate vet fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/server

run: build
	./$(BIN)

# Tests: packages run in parallel processes, each test on its own database.
# test-deps installs what a fresh machine lacks (Chromium for e2e).
test: vet test-deps
	$(GO) test -race -count=1 -timeout 15m ./...

test-deps:
	@./scripts/test-deps

test-short: vet
	$(GO) test -count=1 ./internal/...

# Benchmarks report their own percentiles and rates (p50-ms, p99-ms, req/s,
# events/s, ...); the machine's load shows in them, so compare runs on one
# machine. BENCH_RATE changes the open-loop rate of the team listing.
bench:
	$(GO) test -run '^$$' -bench 'ListTeams|Get_Idle' -benchtime 5000x ./internal/api/
	$(GO) test -run '^$$' -bench 'LockCycle' -benchtime 3000x ./internal/api/
	$(GO) test -run '^$$' -bench 'Revocation' -benchtime 3x ./internal/api/
	$(GO) test -run '^$$' -bench 'EventAppend' -benchtime 5000x ./internal/api/
	$(GO) test -run '^$$' -bench 'LiveFanout' -benchtime 100x -timeout 10m ./internal/api/
	$(GO) test -run '^$$' -bench '^BenchmarkCatalog$$' -benchtime 100x ./internal/api/
	$(GO) test -run '^$$' -bench 'DLQBrowse' -benchtime 900x ./internal/api/
	$(GO) test -run '^$$' -bench 'DLQFanout' -benchtime 100x -timeout 10m ./internal/api/
	$(GO) test -run '^$$' -bench 'Capture|Replay' -benchtime 3x ./internal/dlq/
	$(GO) test -run '^$$' -bench 'TraceIngest' -benchtime 400x ./internal/api/
	$(GO) test -run '^$$' -bench 'TraceRead' -benchtime 500x -timeout 20m ./internal/api/
	$(GO) test -run '^$$' -bench 'TopologyPage' -benchtime 3x ./e2e/
	$(GO) test -run '^$$' -bench . ./internal/web/
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./internal/eventstore/
	$(GO) test -run '^$$' -bench . -benchtime 3s ./internal/lockd/
	$(GO) test -run '^$$' -bench . -benchmem ./internal/rbac/

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeStrict -fuzztime 30s ./internal/api/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s -fuzzminimizetime 5s ./internal/catalog/backstage/

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

$(TEMPL):
	$(GO) install github.com/a-h/templ/cmd/templ@$(TEMPL_VER)

generate: $(TEMPL)
	$(TEMPL) generate ./views

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
