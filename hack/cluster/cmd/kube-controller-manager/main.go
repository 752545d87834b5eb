// Command kube-controller-manager is the upstream controller manager, built
// from the Go module proxy (it runs the Deployment and garbage collectors).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
