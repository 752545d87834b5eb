package resilience

import (
	"log/slog"
	"testing"

	"github.com/teleop/teleop/test/benchkit"
)

// runOperator is the child process: teleop's operator with its defaults, as
// `teleop run` without a token starts it, until SIGTERM.
func runOperator(kubeconfig, namespace string) int {
	if err := benchkit.RunOperator(kubeconfig, namespace, nil); err != nil {
		slog.Error("operator child", "err", err)
		return 1
	}
	return 0
}

// startOperator re-executes the test binary as an operator for namespace
// ("" = all) and returns at once; the process is killed when the test ends.
func startOperator(t testing.TB, kubeconfig, namespace string) *benchkit.Process {
	t.Helper()
	return benchkit.StartOperator(t, envOperatorKubeconfig+"="+kubeconfig, envOperatorNamespace+"="+namespace)
}
