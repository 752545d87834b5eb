#!/usr/bin/env bash
# Builds the local control plane's binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl from this module; kwok by
# go install) into the cache dir. Idempotent: rebuilds only what is missing
# or whose sources (go.mod, go.sum, cmd/) changed since the last build.
# Needs only Go and the module proxy.
#
#   build.sh kubelet   builds only the real node's kubelet (node/kubelet), at
#                      the same version (make node-bin)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_dir="${TELEOP_CLUSTER_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/teleop/bin}"
k8s_version=v1.36.3
k8s_minor=36
kwok_version=v0.8.0
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)
ldflags="-X k8s.io/component-base/version.gitVersion=${k8s_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${k8s_minor} -X k8s.io/client-go/pkg/version.gitVersion=${k8s_version} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=${k8s_minor}"

mkdir -p "$bin_dir"
# Two concurrent runs (make -j, two checkouts) must not build over each other.
if command -v flock >/dev/null; then
	exec 9>"$bin_dir/.build.lock"
	flock 9
fi

if [ "${1:-}" = kubelet ]; then
	kubelet_stamp="$(cd "$here" && { sha256sum go.mod go.sum node/kubelet/main.go; echo "$ldflags"; } | sha256sum | cut -d' ' -f1)"
	if [ ! -x "$bin_dir/kubelet" ] || [ "$(cat "$bin_dir/.kubelet.stamp" 2>/dev/null)" != "$kubelet_stamp" ]; then
		echo "hack/cluster: building kubelet ${k8s_version} into $bin_dir (about a minute on a warm build cache)" >&2
		(cd "$here" && go build -buildvcs=false -ldflags "$ldflags" -o "$bin_dir/kubelet" ./node/kubelet)
		echo "$kubelet_stamp" >"$bin_dir/.kubelet.stamp"
	fi
	exit 0
fi

stamp_file="$bin_dir/.control-plane.stamp"
stamp="$(cd "$here" && { sha256sum go.mod go.sum $(find cmd -name '*.go' | LC_ALL=C sort); echo "$ldflags"; } | sha256sum | cut -d' ' -f1)"

missing=""
for b in "${binaries[@]}"; do
	[ -x "$bin_dir/$b" ] || missing="$missing $b"
done
if [ -n "$missing" ] || [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ]; then
	echo "hack/cluster: building${missing:+ (missing:$missing)} ${binaries[*]} ${k8s_version} into $bin_dir (a cold build takes about 7 minutes on 2 cores)" >&2
	(cd "$here" && go build -buildvcs=false -ldflags "$ldflags" -o "$bin_dir/" ./cmd/...)
	echo "$stamp" >"$stamp_file"
fi

kwok_stamp="$bin_dir/.kwok.version"
if [ ! -x "$bin_dir/kwok" ] || [ "$(cat "$kwok_stamp" 2>/dev/null)" != "$kwok_version" ]; then
	echo "hack/cluster: installing kwok ${kwok_version} into $bin_dir" >&2
	GOBIN="$bin_dir" go install -buildvcs=false "sigs.k8s.io/kwok/cmd/kwok@${kwok_version}"
	echo "$kwok_version" >"$kwok_stamp"
fi
