#!/usr/bin/env bash
# make bench: every benchmark, each reporting against a baseline measured in
# the same run (docs/benchmarks.md records the figures). The ones that need
# Kubernetes run on the local control plane: test/bench starts private ones,
# the rest share one started here.
#
#   hack/bench.sh           everything (a few hours on 2 cores)
#   hack/bench.sh growth    only teleop against the floor at 2,000, 5,000 and
#                           10,000 apps, one pair each (time and RSS against N)
#   hack/bench.sh restart   only teleop's restarts at 10,000 apps, against the
#                           cluster rolling out the same change alone
set -euo pipefail
cd "$(dirname "$0")/.."
bench() { echo "=== $* (load average $(cut -d' ' -f1-3 /proc/loadavg))"; go test -count=1 -run '^$' -benchtime=1x -timeout 240m "$@"; }

growth() {
	for apps in 2000 5000 10000; do
		TELEOP_BENCH_APPS=$apps TELEOP_BENCH_PAIRS=1 bench -bench BenchmarkOperator ./test/bench/
	done
}

restart() { TELEOP_BENCH_APPS=10000 TELEOP_BENCH_RESTARTS=5 bench -bench BenchmarkRestart ./test/bench/; }

case "${1:-}" in
growth | restart)
	"$1"
	exit
	;;
esac

# teleop as shipped against the floor: 1,000 apps, three interleaved pairs.
bench -bench BenchmarkOperator ./test/bench/
# What a TeleApp patch costs the API server against a Deployment patch.
TELEOP_BENCH_APPS=2000 bench -bench BenchmarkAPIServerPatch ./test/bench/
growth
restart
hack/kopf-bench.sh
hack/with-cluster.sh bash -c '
  set -euo pipefail
  bench() { echo "=== $*"; go test -count=1 -run "^\$" -benchtime=1x -timeout 60m "$@"; }
  bench -bench BenchmarkChatRoundTrip ./test/e2e/
  bench -bench BenchmarkRepliesUnderLoad ./test/e2e/
  bench -bench BenchmarkFanOut ./commands/progress/
  bench -bench BenchmarkConversationStep ./conversations/
'
echo "=== micro-benchmarks"
go test -count=1 -run '^$' -bench 'BenchmarkParse|BenchmarkSenderFanOut|BenchmarkRoundTrip|BenchmarkSlim' -benchtime=2s ./commands/ ./bot/ ./test/telegramemu/ ./operator/actor/
