#!/usr/bin/env bash
# Samples a running local control plane (test/cluster) beside a benchmark,
# to see where the cluster's CPU goes in each phase:
#   OUT/cpu.txt      every 5 s: the time, then utime+stime (clock ticks, from
#                    /proc/<pid>/stat) of etcd, kube-apiserver, the controller
#                    manager, the scheduler, KWOK, teleop and the bench
#                    test process, then the bench namespaces that exist;
#   OUT/metrics.txt  every 10 s: kube-apiserver's request and watch-event
#                    counters, each line led by the time.
# Usage: hack/sample-cluster.sh OUT   (stop it with Ctrl-C or kill)
set -euo pipefail

out=${1:?usage: hack/sample-cluster.sh OUT}
mkdir -p "$out"
kubectl=${KUBECTL:-$HOME/.cache/teleop/bin/kubectl}
# comm names as /proc shows them (15 characters at most)
components=(etcd kube-apiserver kube-controller kube-scheduler kwok teleop bench.test)

cpu_ticks() {
	local total=0 pid ticks
	for pid in $(pgrep -x "$1" || true); do
		ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
		total=$((total + ticks))
	done
	echo "$total"
}

# the newest local cluster's admin kubeconfig; nothing when none runs
kubeconfig() {
	ls -td /tmp/teleop-cluster-*/admin.kubeconfig 2>/dev/null | head -1 || true
}

tick=0
while true; do
	now=$(date +%s)
	line="$now"
	for c in "${components[@]}"; do
		line="$line $c=$(cpu_ticks "$c")"
	done
	kc=$(kubeconfig)
	if [[ -n $kc ]]; then
		namespaces=$(timeout 5 "$kubectl" --kubeconfig "$kc" get ns -o name 2>/dev/null | grep -E 'floor|teleop' | tr '\n' ',' || true)
		line="$line ns=$namespaces"
		if ((tick % 2 == 0)); then
			timeout 8 "$kubectl" --kubeconfig "$kc" get --raw /metrics 2>/dev/null |
				grep -E '^(apiserver_request_total|apiserver_watch_events_total|apiserver_watch_events_sizes_sum)' |
				sed "s/^/$now /" >>"$out/metrics.txt" || true
		fi
	fi
	echo "$line" >>"$out/cpu.txt"
	tick=$((tick + 1))
	sleep 5
done
