#!/usr/bin/env bash
# make bench: every benchmark, each reporting against a baseline measured in
# the same run (docs/benchmarks.md records the figures). The ones that need
# Kubernetes run on the local control plane: test/bench and test/resilience
# start private ones, the rest share one started here.
set -euo pipefail
cd "$(dirname "$0")/.."
bench() { echo "=== $*"; go test -count=1 -run '^$' -benchtime=1x -timeout 60m "$@"; }

bench -bench BenchmarkOperator ./test/bench/
bench -bench BenchmarkScale ./test/resilience/
hack/with-cluster.sh bash -c '
  set -euo pipefail
  bench() { echo "=== $*"; go test -count=1 -run "^\$" -benchtime=1x -timeout 60m "$@"; }
  bench -bench BenchmarkChatRoundTrip ./test/e2e/
  bench -bench BenchmarkRepliesUnderLoad ./test/e2e/
  bench -bench BenchmarkFanOut ./commands/progress/
  bench -bench BenchmarkConversationStep ./conversations/
'
echo "=== micro-benchmarks"
go test -count=1 -run '^$' -bench 'BenchmarkParse|BenchmarkSenderFanOut|BenchmarkRoundTrip' -benchtime=2s ./commands/ ./bot/ ./test/telegramemu/
