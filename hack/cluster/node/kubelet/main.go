// Command kubelet is the upstream kubelet, built from the Go module proxy at
// the control plane's version; it runs the local plane's one real node
// (containerd and runc from apt), next to KWOK's fake ones.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client metrics, as upstream's main registers them
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream's main registers it
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
