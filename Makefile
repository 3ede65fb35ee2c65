# Prism developer and CI entry points. `make help` lists the targets.
#
# Everything here works on a fresh machine from this file alone: tools are
# pinned and installed into .bin/ (never taken from PATH), Debian packages
# (protoc, PostgreSQL, NATS, Redis) are installed when missing, and go is
# found on PATH or at /usr/local/go.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
GO ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
BIN_DIR := $(ROOT)/.bin
# The go binary's own directory first, so scripts and go's subprocesses agree.
export PATH := $(dir $(GO)):$(PATH)
export GO BIN_DIR

# Pinned tool versions. protoc-gen-go must match google.golang.org/protobuf in
# go.mod; protoc is Debian bookworm's protobuf-compiler.
export PROTOC_VERSION := 3.21.12
export PROTOC_GEN_GO_VERSION := v1.36.12
export STATICCHECK_VERSION := v0.8.2

PKGS ?= ./...
TEST_FLAGS ?= -race -count=1
# Fuzzing: `make test` gives every target FUZZ_SMOKE_TIME, `make fuzz` FUZZTIME.
FUZZ_SMOKE_TIME ?= 5s
FUZZTIME ?= 2m
FUZZ ?= ^Fuzz
FUZZ_PKGS ?= ./...
# Benchmarks: packages without benchmarks only cost their compile time.
BENCH_PKGS ?= ./...
BENCH ?= .
BENCHTIME ?= 1s
BENCH_COUNT ?= 1
# `make bench`: the standard set of `prism bench`, a scenario with PII too.
BENCH_SCENARIOS ?= kv-get,kv-put,kv-mixed,kv-scan,ts-append,ts-query,graph-traverse,kv-get+pii
BENCH_DURATION ?= 4s
BENCH_ARGS ?=
ARGS ?=
BUILD_FLAGS ?=

PHASE := $(ROOT)/scripts/phase.sh

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## install pinned staticcheck and protoc-gen-go into .bin/ (only when missing or another version)
	@scripts/tools.sh

.PHONY: services
services: ## start PostgreSQL, NATS (JetStream) and Redis on 127.0.0.1 unless already running
	@scripts/services.sh

.PHONY: browser
browser: ## install headless Chromium for the admin UI's browser tests unless present
	@scripts/browser.sh

.PHONY: proto
proto: tools ## regenerate Go code from proto/**/*.proto
	@scripts/proto.sh gen

.PHONY: proto-check
proto-check: tools ## fail if the committed generated code differs from a fresh generation
	@scripts/proto.sh check

.PHONY: examples
examples: tools ## regenerate examples/ (protoc-gen-go + protoc-gen-prism: typed clients, namespace YAML, descriptor sets)
	@scripts/examples.sh gen

.PHONY: examples-check
examples-check: tools ## fail if the committed examples differ from a fresh protoc-gen-prism run
	@scripts/examples.sh check

.PHONY: vet
vet: ## go vet
	$(GO) vet $(PKGS)

.PHONY: staticcheck
staticcheck: tools ## staticcheck (pinned)
	$(BIN_DIR)/staticcheck $(PKGS)

.PHONY: lint
lint: vet staticcheck ## go vet and staticcheck

.PHONY: unit
unit: ## go test with the race detector (needs `make services` for backend and integration tests)
	$(GO) test $(TEST_FLAGS) $(PKGS)

.PHONY: fuzz-smoke
fuzz-smoke: ## run every fuzz target briefly (FUZZ_SMOKE_TIME each)
	@FUZZTIME=$(FUZZ_SMOKE_TIME) FUZZ='$(FUZZ)' scripts/fuzz.sh $(FUZZ_PKGS)

.PHONY: fuzz
fuzz: ## run every fuzz target for longer (FUZZTIME each; FUZZ=regexp, FUZZ_PKGS=packages)
	@FUZZTIME=$(FUZZTIME) FUZZ='$(FUZZ)' scripts/fuzz.sh $(FUZZ_PKGS)

.PHONY: test
test: ## everything CI runs: tools, services, browser, proto-check, vet, staticcheck, tests, fuzz smoke
	@$(PHASE) tools       $(MAKE) tools
	@$(PHASE) services    $(MAKE) services
	@$(PHASE) browser     $(MAKE) browser
	@$(PHASE) proto-check $(MAKE) proto-check
	@$(PHASE) examples-check $(MAKE) examples-check
	@$(PHASE) vet         $(MAKE) vet
	@$(PHASE) staticcheck $(MAKE) staticcheck
	@$(PHASE) go-test     $(MAKE) unit
	@$(PHASE) fuzz-smoke  $(MAKE) fuzz-smoke

.PHONY: bench
bench: ## `prism bench` standard set vs the no-op floor and the direct backend (BENCH_DURATION, BENCH_ARGS); writes bench.json, bench.html
	$(GO) build -o $(ROOT)/bin/prism ./cmd/prism
	$(ROOT)/bin/prism bench --scenario '$(BENCH_SCENARIOS)' --duration $(BENCH_DURATION) --warmup 1s \
		--open-fraction 0.5 --json $(ROOT)/bench.json --html $(ROOT)/bench.html $(BENCH_ARGS)

.PHONY: bench-go
bench-go: ## go test benchmarks (BENCH_PKGS, BENCH, BENCHTIME, BENCH_COUNT)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime=$(BENCHTIME) -count=$(BENCH_COUNT) $(BENCH_PKGS)

.PHONY: build
build: ## build bin/prism (BUILD_FLAGS, e.g. -trimpath for a release)
	$(GO) build $(BUILD_FLAGS) -o bin/prism ./cmd/prism

.PHONY: run
run: ## go run ./cmd/prism dev (extra flags in ARGS)
	$(GO) run ./cmd/prism dev $(ARGS)

.PHONY: clean
clean: ## remove bin/ and .bin/
	rm -rf bin .bin
