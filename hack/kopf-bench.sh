#!/usr/bin/env bash
# Kopf against teleop on the same burst (docs/benchmarks.md, "Against Kopf"):
# 16 clients create N TeleApps at 1 replica, then patch them all to 2; each
# operator a fresh process measured from /proc (teleop as shipped: the bot on
# an emulator, leader election, the announcer), in interleaved pairs
# (TELEOP_BENCH_PAIRS, 3) whose median and spread it reports. Kopf runs from
# its source (../shared/peers/kopf-1.44.6, or TELEOP_KOPF_SOURCE) on Debian's
# python3 packages (for /usr/bin/python3), installed here when missing.
#   hack/kopf-bench.sh                 # N=1000
#   TELEOP_BENCH_APPS=200 hack/kopf-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(python3 python3-aiohttp python3-click python3-iso8601 python3-pythonjsonlogger
	python3-jsonpatch python3-typing-extensions python3-yaml python3-kubernetes)
if ! /usr/bin/python3 -c 'import aiohttp, click, iso8601, pythonjsonlogger, jsonpatch, typing_extensions, yaml, kubernetes' 2>/dev/null; then
	echo "=== installing Kopf's Python packages from Debian: ${packages[*]}"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}"
fi

make --no-print-directory build cluster-bin
echo "=== BenchmarkKopf with ${TELEOP_BENCH_APPS:-1000} apps, ${TELEOP_BENCH_PAIRS:-3} pairs (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
go test -count=1 -run '^$' -bench BenchmarkKopf -benchtime=1x -timeout 120m ./test/bench/
echo "=== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
