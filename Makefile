# The ovrclk/synapse entrypoint. `make up` runs it, `make test` tests it (see README.md).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin/entrypoint

.PHONY: all build test test-deps lint bench up image clean

all: build

# A static binary: it is copied into whatever base image Synapse comes in.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/entrypoint

# Installs what the tests use from Debian (idempotent; CI starts on a fresh machine).
test-deps:
	scripts/install-test-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The whole suite: unit tests, the PID-1 conformance suite (root: real PID namespaces and ptys),
# and the tests against real git servers, the real Synapse runtime and the fake Keybase CLI.
test: test-deps lint build
	$(GO) test -count=1 -timeout 60m ./...

# Benchmarks against tini, dumb-init, the git CLI and Synapse itself, measured in the same run;
# writes docs/benchmarks.md.
bench: test-deps build
	scripts/bench.sh

# A real Synapse behind the entrypoint on this machine (as root): the cached Debian runtime, the
# entrypoint as PID 1 of a new PID namespace, server name localhost, sqlite. Ctrl-C stops it.
up: build
	scripts/up.sh

# The ovrclk/synapse image (needs a Docker engine; see scripts/image.sh).
image: build
	scripts/image.sh

clean:
	rm -rf bin
