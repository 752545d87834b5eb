# teleop: everything builds from Go, the Go module proxy and Debian's apt.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 10s

include hack/cluster/cluster.mk

.PHONY: all build image test node-test unit lint generate verify dev bench fuzz soak clean

all: build

build: ## bin/teleop
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/teleop ./cmd/teleop

IMAGE_REPO ?=

image: ## bin/image: the OCI image, built without a Docker engine (IMAGE_REPO=registry/teleop also pushes it)
	$(GO) run ./hack/image -version $(VERSION) -revision $$(git rev-parse HEAD) -epoch $$(git log -1 --format=%ct) -out bin/image $(if $(IMAGE_REPO),-repo $(IMAGE_REPO))

lint: ## gofmt, go vet, and go.mod/go.sum tidy
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }

generate: ## regenerate deepcopy, CRDs and clients
	hack/codegen/update.sh
	cp deploy/crds/teleop.io_*.yaml deploy/helm/teleop/crds/

verify: ## generated code and CRDs match the types
	hack/codegen/verify.sh
	diff -ru deploy/crds/ deploy/helm/teleop/crds/ -x kustomization.yaml

unit: ## tests that need no cluster
	TELEOP_SKIP_CLUSTER=1 $(GO) test -count=1 ./...

test: lint verify build cluster-bin helm-bin registry-bin ## everything: lint, drift check, race tests on a real control plane, short fuzzing
	hack/test.sh

# Not part of make test: it needs root, apt packages and changes this
# machine's network while it runs (docs/design.md, "A real node").
node-test: cluster-bin helm-bin registry-bin node-bin node-deps ## the Helm chart on a real kubelet, containerd and runc (root; about a minute warm)
	TELEOP_NODE_TEST=1 $(GO) test -race -count=1 -v -timeout 15m ./test/node/

fuzz: ## longer fuzzing (FUZZTIME=5m make fuzz)
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

bench: build cluster-bin ## benchmarks on the real control plane, see docs/benchmarks.md
	hack/bench.sh

dev: build cluster-bin ## a local control plane, teleop on it, and a console chat
	hack/dev.sh

soak: build cluster-bin ## the long fault and scale runs, see docs/reliability.md
	hack/soak.sh all

clean:
	rm -rf bin
