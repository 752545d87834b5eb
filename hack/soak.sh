#!/usr/bin/env bash
# make soak: the long variants of the resilience suite (test/resilience) and
# teleop against the floor at 2,000, 5,000 and 10,000 TeleApps (test/bench,
# `hack/bench.sh growth`), each on private local control planes. Figures land in docs/reliability.md and docs/benchmarks.md.
#
#   hack/soak.sh            everything (about an hour on 2 cores)
#   hack/soak.sh faults     only the fault tests, long variants
#   hack/soak.sh scale      only the scale series (2,000, 5,000, 10,000)
#   hack/soak.sh updates    1,000,000 Telegram updates through the real binary
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

faults() {
	# Long variants: a 2-minute API server outage (TestOperatorRecoversFromAPIServerOutage:
	# /readyz false meanwhile, a new TeleApp deployed within seconds of the
	# server's return, pods re-readied by KWOK), 40 rounds of concurrent
	# kubectl and chat writes, 30-second Telegram fault windows.
	TELEOP_SOAK=1 go test -race -count=1 -timeout 60m -v ./test/resilience/
}

scale() {
	hack/bench.sh growth
}

updates() {
	# The update checkpoint stays small and teleop keeps answering: see
	# docs/reliability.md, "Never wedged".
	hack/with-cluster.sh env TELEOP_SOAK_UPDATES=${TELEOP_SOAK_UPDATES:-1000000} \
		go test -count=1 -run '^$' -bench BenchmarkUpdateSoak -benchtime=1x -timeout 6h ./test/e2e/
}

case $what in
all) faults; scale; updates ;;
faults) faults ;;
scale) scale ;;
updates) updates ;;
*) echo "usage: $0 [all|faults|scale|updates]" >&2; exit 2 ;;
esac
