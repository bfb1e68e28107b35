# sdbmaint developer targets. `make help` lists them.
GO ?= go
BIN ?= bin/sdbmaint
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: help build test race vet lint fuzz bench demo sim ci docker clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build the static binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/sdbmaint

test: ## run the test suite (the README's test command)
	$(GO) test -race ./...

vet: ## go vet
	$(GO) vet ./...

lint: vet ## go vet and staticcheck
	$(GO) tool staticcheck ./...

fuzz: ## run every fuzz target for 30s each
	./.ci/fuzz 30s

bench: ## run the benchmarks (preflight, whole maintenance, Slack acks)
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

demo: ## the whole runbook against an in-process simulated cluster
	$(GO) run ./cmd/sdbmaint demo

sim: ## a simulated cluster until Ctrl-C, config written to sim/sdbmaint.yaml
	mkdir -p sim && $(GO) run ./cmd/sdbmaint sim --write-config sim/sdbmaint.yaml

ci: ## what CI runs
	./.ci/run

docker: ## build the container image (needs a Docker engine)
	docker build -t sdbmaint:$(VERSION) .

clean: ## remove build output
	rm -rf bin sim
