#!/usr/bin/env bash
# make soak: the long variants of the resilience suite (test/resilience) and
# the scale benchmark at 1,000 and 10,000 TeleApps, each on private local
# control planes. Figures land in docs/reliability.md and docs/benchmarks.md.
#
#   hack/soak.sh            everything (about an hour on 2 cores)
#   hack/soak.sh faults     only the fault tests, long variants
#   hack/soak.sh scale      only the scale benchmark (1,000 then 10,000)
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
	for apps in 1000 10000; do
		echo "=== BenchmarkScale with $apps TeleApps"
		TELEOP_SCALE_APPS=$apps go test -count=1 -run '^$' -bench BenchmarkScale -benchtime=1x -timeout 120m ./test/resilience/
	done
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
