# snakepit-go: `make demo` runs the demo, `make test` runs every test.
SHELL := /bin/bash
GO ?= go
# go-nvml's cgo wrapper declares NVML functions NVIDIA marked deprecated.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations
PYTEST_ARGS ?= -q

.PHONY: setup test test-go test-python lint demo demo-python bench build proto health chaos fuzz test-cluster demo-cluster

setup:
	@scripts/setup.sh

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	CGO_ENABLED=0 $(GO) build ./...   # the library builds without cgo (no NVML then)
	cd examples && $(GO) vet ./...

test-go:
	$(GO) test -race -count=1 ./...

test-python:
	@py=$$(scripts/find-python.sh) && cd priv/python && $$py -m pytest $(PYTEST_ARGS) tests

test: setup lint test-go test-python fuzz-short

# The cross-node tests three times in a row (they also run once in test-go).
test-cluster: setup
	$(GO) test -race -count=3 -v -run . ./tests/cluster/

# The chaos suite, long form (about 3 minutes): random calls against three
# pools (one forked from a fork server, several calls per worker) while
# workers and the zygote are killed, frozen, recycled and resized, then a
# stop mid-flight; and five host SIGKILLs. The test suite runs a 40 s form.
# CHAOS_SEED=<n> replays a run; CHAOS_DURATION sets its length.
CHAOS_DURATION ?= 150s
chaos: setup
	@set -o pipefail; py=$$(scripts/find-python.sh) && SNAKEPIT_PYTHON=$$py SNAKEPIT_CHAOS_DURATION=$(CHAOS_DURATION) \
	  SNAKEPIT_CHAOS_SEED=$(CHAOS_SEED) $(GO) test -count=1 -timeout 15m -v \
	  -run 'TestChaos|TestHostSIGKILLWithFrozenWorkersAndDetachedChildren' ./tests/chaos/ | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|chaos' 

# Fuzz targets: FUZZTIME each (fuzz-short: 20000 inputs each, a few seconds, in make test).
FUZZTIME ?= 60s
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)
fuzz-short:
	@scripts/fuzz.sh 20000x

health:
	@py=$$(scripts/find-python.sh) && $$py priv/python/grpc_server.py --health-check \
	  --adapter snakepit_bridge.adapters.showcase.ShowcaseAdapter

# The Go CLI's tour of a supervised pool of showcase workers.
demo: setup health
	@py=$$(scripts/find-python.sh) && SNAKEPIT_PYTHON=$$py $(GO) run ./cmd/snakepit demo

# Three nodes on this machine (this process and two `snakepit serve -drive`),
# each with its own pool: throughput to a local vs a remote pool, then calls
# from every node to every pool while one node is SIGKILLed, every reply
# counted; the node restarted. DEMO_CLUSTER_ARGS=-json prints one JSON object.
demo-cluster: setup health
	@py=$$(scripts/find-python.sh) && SNAKEPIT_PYTHON=$$py $(GO) run ./cmd/snakepit demo-cluster $(DEMO_CLUSTER_ARGS)

# The benchmarks: pool vs direct, start-up vs cold start, memory; results in bench/results.
# BENCH_ARGS passes flags and scenarios, e.g. make bench BENCH_ARGS="-duration 1s unary".
bench: setup health
	@py=$$(scripts/find-python.sh) && SNAKEPIT_PYTHON=$$py $(GO) run ./cmd/snakepit bench $(BENCH_ARGS)

# One worker driven from Python, without the Go host.
demo-python: setup health
	@py=$$(scripts/find-python.sh) && $$py priv/python/examples/demo.py

build:
	$(GO) build -o bin/snakepit ./cmd/snakepit

proto:
	scripts/gen-proto.sh
