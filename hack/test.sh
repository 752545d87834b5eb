#!/usr/bin/env bash
# make test: race tests of every package against one local control plane,
# then a short run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/with-cluster.sh go test -race -count=1 -timeout 30m ./...
FUZZTIME=${FUZZTIME:-5s} hack/fuzz.sh
