// Package resilience proves what teleop promises under faults, on the real
// local control plane: the API server going away, the operator killed
// mid-burst, kubectl and the chat writing the same TeleApp at once, and
// Telegram failing. (Scale and restarts at 10,000 TeleApps are measured by
// test/bench.)
//
// Fast tests run with `make test`; the long variants are gated by an
// environment variable that hack/soak.sh sets (docs/reliability.md).
package resilience

import (
	"os"
	"testing"

	"github.com/teleop/teleop/test/cluster"
)

const (
	// envSoak=1 runs the long variants of the fault tests.
	envSoak = "TELEOP_SOAK"
	// envOperatorKubeconfig makes the test binary run only teleop's
	// operator against that kubeconfig: tests re-execute themselves this way
	// to kill the operator with SIGKILL and to read its own resident memory.
	envOperatorKubeconfig = "TELEOP_RESILIENCE_OPERATOR_KUBECONFIG"
	// envOperatorNamespace scopes that operator to one namespace.
	envOperatorNamespace = "TELEOP_RESILIENCE_OPERATOR_NAMESPACE"
)

func TestMain(m *testing.M) {
	if kubeconfig := os.Getenv(envOperatorKubeconfig); kubeconfig != "" {
		os.Exit(runOperator(kubeconfig, os.Getenv(envOperatorNamespace)))
	}
	cluster.Main(m)
}

// soak reports whether the long variants were asked for.
func soak() bool { return os.Getenv(envSoak) == "1" }
