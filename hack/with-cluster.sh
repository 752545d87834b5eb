#!/usr/bin/env bash
# Runs a command with one local control plane up for its whole duration and
# TELEOP_TEST_KUBECONFIG (and KUBECONFIG) pointing at it; stops the plane after.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d "${TMPDIR:-/tmp}/teleop-cluster.XXXXXX")
go build -o bin/localcluster ./test/cluster/cmd/localcluster
bin/localcluster up --dir "$dir" >"$dir/localcluster.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 240); do
  [ -s "$dir/kubeconfig" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/localcluster.log"; echo "the local control plane did not start" >&2; exit 1; }
  sleep 0.5
done
[ -s "$dir/kubeconfig" ] || { cat "$dir/localcluster.log"; echo "the local control plane did not start in 120 s" >&2; exit 1; }
export TELEOP_TEST_KUBECONFIG="$dir/kubeconfig" KUBECONFIG="$dir/kubeconfig"
"$@"
