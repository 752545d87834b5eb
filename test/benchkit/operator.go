package benchkit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/transport"

	"github.com/teleop/teleop/operator"
)

// LogCachesSynced is what the operator logs once its caches are synced and
// its workers run.
const LogCachesSynced = "operator controller started"

// LogLeading is what teleop logs once it has won leader election.
const LogLeading = "became the leader"

// RunOperator is the body of a test binary that StartOperator re-executed:
// teleop's operator with its default options, as `teleop run` without a
// token starts it, for namespace ("" = all) against kubeconfig, until SIGTERM
// or an interrupt. wrap, when not nil, wraps the operator's transport (to
// count its requests, say). The operator logs to stderr.
func RunOperator(kubeconfig, namespace string, wrap transport.WrapperFunc) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	if wrap != nil {
		cfg.Wrap(wrap)
	}
	opts := operator.Options{Namespace: namespace, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	clients, err := operator.NewClients(cfg, opts)
	if err != nil {
		return fmt.Errorf("build clients: %w", err)
	}
	op, err := operator.New(clients, opts)
	if err != nil {
		return fmt.Errorf("build operator: %w", err)
	}
	if err := op.Run(ctx); err != nil {
		return fmt.Errorf("operator stopped: %w", err)
	}
	return nil
}

// StartOperator re-executes the test binary with env ("NAME=value") added to
// its environment and no tests selected, for a TestMain that sees env to call
// RunOperator. It returns at once; the process is killed when the test ends.
func StartOperator(tb testing.TB, env ...string) *Process {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatalf("find the test binary: %v", err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	return StartProcess(tb, cmd)
}
