# DocuVault. `make run` runs the service, `make test` runs every test (installing
# what they need first: .ci/prepare), `make test-short` the fast tier.
SHELL := /bin/bash

GO            ?= go
MINIO_MODULE  := github.com/minio/minio
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
# Built MinIO binaries are cached per version outside the clone, so a fresh
# clone on the same machine does not rebuild it.
TOOLS_CACHE   ?= $(HOME)/.cache/docuvault
MINIO_CACHED  := $(TOOLS_CACHE)/minio-$(MINIO_VERSION)/minio
TEST_FLAGS    ?= -race -count=1 -timeout 30m
# The fast tier: unit and in-memory tests; every test that needs a real
# server, browser or npm build skips itself under -short (testenv.SkipShort).
SHORT_FLAGS   ?= -race -short -count=1 -timeout 5m

.PHONY: all tools build prepare test test-short lint run clean bench examples

all: build

## tools: build ./bin/minio (the real MinIO server the tests and the local stack run)
tools: bin/minio

bin/minio:
	@mkdir -p bin
	@if [ ! -x "$(MINIO_CACHED)" ]; then \
		echo "Building MinIO $(MINIO_VERSION) from the Go module proxy: this takes 5-9 minutes the first time (cached in $(TOOLS_CACHE) after)."; \
		mkdir -p "$(dir $(MINIO_CACHED))"; \
		GOBIN="$(dir $(MINIO_CACHED))" GOFLAGS=-mod=mod $(GO) install -v $(MINIO_MODULE)@$(MINIO_VERSION) 2>&1 \
			| awk '{ n++; if (n % 100 == 0) printf("  ... %d packages compiled (%s)\n", n, $$0) } END { printf("  %d packages compiled\n", n) }'; \
		test -x "$(MINIO_CACHED)" || { echo "MinIO build failed"; exit 1; }; \
	fi
	@cp "$(MINIO_CACHED)" bin/minio
	@echo "bin/minio ready ($(MINIO_VERSION))"

## build: build ./bin/docuvault
build:
	$(GO) build -o bin/docuvault ./services/docuvault

## prepare: install what the tests need from the system (.ci/prepare):
## Chromium, Node.js and npm, the PostgreSQL server binaries; as root on
## Debian with apt-get, elsewhere it stops, printing the command to run
prepare:
	@.ci/prepare >/dev/null

## test: every test, with the race detector, against real PostgreSQL and MinIO
## (and, in Chromium, the Uppy example, which it builds first); prepare runs
## first. The databases go to DATABASE_URL if set, else to 127.0.0.1:5432 if
## it answers, else to a throwaway cluster per package (.ci/prepare says which).
test: prepare tools examples
	@env=$$(.ci/prepare 2>/dev/null) && eval "$$env" && $(GO) test $(TEST_FLAGS) ./...

## test-short: the fast tier (under a minute): unit and in-memory tests with
## the race detector, go test -short; starts no server and installs nothing
test-short:
	$(GO) test $(SHORT_FLAGS) ./...

## examples: install and bundle examples/uppy (Uppy's packages from npm, pinned
## by its package-lock.json; esbuild): npm ci, then npm run build
examples: examples/uppy/dist/bundle.js

examples/uppy/dist/bundle.js: examples/uppy/package-lock.json examples/uppy/src/main.js
	@command -v npm >/dev/null || { echo "npm not found: apt-get install nodejs npm (examples/uppy is built with it)"; exit 1; }
	cd examples/uppy && npm ci --no-audit --no-fund && npm run build

## lint: go vet and a gofmt check
lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## run: the whole stack in one process (docuvault dev): embedded NATS, PostgreSQL
## (DATABASE_URL, or a cluster in .data/pg) and MinIO, with the api, confirmer,
## sweeper and classifier; state is kept in .data; Ctrl-C stops everything. DEV_FLAGS adds flags,
## e.g. make run DEV_FLAGS='--nats-addr 127.0.0.1:4223' (docuvault dev -h lists them).
run: build tools
	./bin/docuvault dev $(DEV_FLAGS)

## bench: benchmarks against the real stack on this machine (about 20 minutes);
## writes BENCHMARKS.md. BENCH_FLAGS adds flags, e.g. BENCH_FLAGS=-quick.
## BASELINE is the commit the run compares with (its docuvault binary measured
## beside this tree's): the parent of issue 25's first commit (c01fa8d), so
## the run shows that issue's commits before and after; BASELINE= compares
## with none.
BASELINE ?= d849a52
bench: tools
	cd bench && $(GO) run ./cmd/bench -out ../BENCHMARKS.md $(if $(BASELINE),-baseline $(BASELINE)) $(BENCH_FLAGS)

clean:
	rm -rf bin

# Fuzz targets, the packages holding them, and how many inputs each runs:
# about 30 s of fuzzing each on this machine. A count, not a duration: with
# a duration, Go 1.26's fuzz coordinator can report its own deadline as a
# failure ("context deadline exceeded", no failing input written) when a
# worker is still busy as the time runs out (golang/go#75804, fixed in Go
# 1.27); FuzzVerify failed so in CI here. FUZZTIME=<duration or Nx>
# overrides every target's budget.
FUZZTIME ?=
# Each new input the fuzzer finds interesting is minimized, by default for up
# to 60 s; with the classifier's large seeds that took the whole FUZZTIME
# (FuzzClassifyBudget ran 13 inputs in 30 s). Ten tries per input keep it
# fuzzing (about 3,500 inputs/s); a failing input is still written to testdata.
FUZZMINIMIZE ?= 10x
FUZZ_TARGETS := \
	FuzzParseNotification:./services/confirmer:40000x \
	FuzzUploadURLDecoder:./services/api:25000x \
	FuzzUploadRequest:./shared/document:500000x \
	FuzzVerify:./shared/auth:400000x \
	FuzzClassify:./shared/classify:40000x \
	FuzzClassifyBudget:./shared/classify:40000x

.PHONY: fuzz
## fuzz: every fuzz target for its budget (about 30 s each); found inputs land in testdata/fuzz as regression seeds
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; rest=$${t#*:}; pkg=$${rest%%:*}; budget=$${rest#*:}; \
		override="$(FUZZTIME)"; budget=$${override:-$$budget}; \
		echo "fuzzing $$name in $$pkg for $$budget"; \
		$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$$budget -fuzzminimizetime=$(FUZZMINIMIZE) $$pkg; \
	done
